/**
 * The SD image recipe as data: which Debian packages go in, which go out again, which systemd units may be
 * enabled and which sockets may listen. The build (images/build) reads these lists through images/cli.ts;
 * the checker (images/check.ts) compares a built image's manifest against them.
 */

/** Debian release and architecture of the image (trixie: nodejs 20.19, kernel 6.12, e2fsprogs 1.47.2). */
export const SUITE = 'trixie';
export const ARCH = 'arm64';
export const COMPONENTS = ['main', 'non-free-firmware'] as const;

/** File system labels: cmdline.txt and fstab name the partitions by label, never by device. */
export const ROOT_LABEL = 'ONIONROOT';
export const BOOT_LABEL = 'ONIONBOOT';
export const DATA_LABEL = 'ONIONDATA';

/**
 * The A/B layout on the SD card (MBR, FAT first for the Pi's firmware): 1 FAT (firmware, U-Boot, boot.scr,
 * onionbox.env), 2 slot A, 3 slot B (made at first boot at the card's end), 4 data (in the image right after
 * slot A, moved and grown at first boot). On the card a slot's partition is SLOT_MB: an update writes a
 * release's whole slot image, as large as its file system, into the other one. In the flashed image slot A's
 * partition is only as large as its file system (its files plus SLOT_HEADROOM_MB and SLOT_HEADROOM_PERCENT);
 * the first boot grows that partition entry to SLOT_MB (images/system/onionbox-firstboot, whose SLOT must
 * equal SLOT_MB).
 */
export const BOOT_PARTITION_MB = 64;
export const SLOT_MB = 1024;
export const SLOT_HEADROOM_MB = 8;
export const SLOT_HEADROOM_PERCENT = 2;
export const DATA_IMAGE_MB = 32;
/** The MBR's disk identifier, the same on every box: RAUC names the slots /dev/disk/by-partuuid/6f6e6962-0N. */
export const DISK_ID = '0x6f6e6962';

/**
 * What the box writes, kept on the data partition and bound into the read-only root: directory under
 * /data, and the path (relative to the root) it is mounted on. The build moves what the image has at these
 * paths (owner and mode included) into the data partition's first contents.
 */
export const DATA_BINDS: readonly { dir: string; mountPoint: string }[] = [
  { dir: 'onionbox', mountPoint: 'var/lib/onionbox' }, // the firmware's settings and secrets
  { dir: 'tor', mountPoint: 'var/lib/tor' }, // tor's keys, consensus, guards
  { dir: 'nm-connections', mountPoint: 'etc/NetworkManager/system-connections' }, // the WAN's profiles
  { dir: 'NetworkManager', mountPoint: 'var/lib/NetworkManager' }, // leases, timestamps
  { dir: 'systemd', mountPoint: 'var/lib/systemd' }, // random seed, timers
  { dir: 'rauc', mountPoint: 'var/lib/rauc' }, // RAUC's slot status
  { dir: 'journal', mountPoint: 'var/log/journal' }, // what journald keeps
];

/** What the box runs. Installed with --no-install-recommends; nothing else is asked for. */
export const PACKAGES: readonly string[] = [
  // kernel and the Pi's boot firmware (non-free-firmware), Wi-Fi firmware and regulatory database
  'linux-image-arm64',
  'raspi-firmware',
  'firmware-brcm80211',
  'wireless-regdb',
  // init, devices, modules, initramfs, the first-boot grow (sfdisk, resize2fs)
  'systemd-sysv',
  'udev',
  'kmod',
  'initramfs-tools',
  'e2fsprogs',
  'fdisk',
  'iproute2',
  // the firmware and its helpers
  'nodejs',
  'tor',
  // the one pluggable-transport binary (obfs4, webtunnel, meek_lite, snowflake): from forky, see below
  'lyrebird',
  'nftables',
  // the kill switch flushes the LAN's redirected flows (firmware/firewall/apply.ts runs conntrack -D)
  'conntrack',
  'network-manager',
  // NetworkManager's Wi-Fi client back end (only a Recommends of network-manager)
  'wpasupplicant',
  'hostapd',
  'dnsmasq-base',
  'iw',
  'rfkill',
  // the A/B layout: U-Boot for the Pi (rpi_arm64/u-boot.bin goes to the FAT partition), RAUC owns the slot
  // states through U-Boot's environment (libubootenv's fw_printenv/fw_setenv), its D-Bus service answers
  // `rauc status`
  'u-boot-rpi',
  'rauc',
  'rauc-service',
  'libubootenv-tool',
  // gdbus: the updater hands a verified bundle to rauc-service over D-Bus (firmware/update/rauc.ts)
  'libglib2.0-bin',
];

/**
 * Packages taken from Debian forky, each pinned by name: images/build adds forky as a source with every
 * other forky package pinned out (priority -1). lyrebird is packaged from forky on and needs only libc.
 */
export const FORKY_PACKAGES: readonly string[] = ['lyrebird'];

/** Installed only to compile the native addons (onoff's epoll, i2c-bus) inside the arm64 root, then purged. */
export const BUILD_PACKAGES: readonly string[] = [
  'node-gyp',
  'libnode-dev',
  'g++',
  'make',
  'python3',
  // mkimage makes boot.scr; u-boot-qemu's qemu_arm64/u-boot.bin is what the emulated boot test boots
  // through (copied out beside the image, never into it)
  'u-boot-tools',
  'u-boot-qemu',
];

/** npm packages with native code rebuilt for arm64 (their package directories under node_modules). */
export const NATIVE_ADDONS: readonly string[] = ['epoll', 'i2c-bus', 'unix-dgram'];

/**
 * Units the image masks besides firmware/system/masked-units.txt (the firmware's list of what would flush
 * or replace the ruleset; images/system-files.ts joins both into MASKED_UNITS): they must never start,
 * even when another package pulls them in later.
 */
export const IMAGE_MASKED_UNITS: readonly string[] = [
  'nftables.service', // our lockdown unit and onionboxd own the ruleset (also in the firmware's list)
  'systemd-timesyncd.service', // no clearnet NTP, ever
  'apt-daily.timer',
  'apt-daily-upgrade.timer',
  'apt-daily.service',
  'apt-daily-upgrade.service',
  'ModemManager.service',
  'tor.service', // the box's tor is onionbox-tor.service (debian-tor), driven by onionboxd
  'tor@default.service',
  'e2scrub_reap.service',
  'e2scrub_all.timer',
  'fstrim.timer',
  'dpkg-db-backup.timer',
  // RAUC's own "mark good once booted": the box marks its slot good only when it routes (onionbox-mark-good)
  'rauc-mark-good.service',
];

/**
 * Units the packages enable that the image disables but does not mask: NetworkManager starts
 * wpa_supplicant over D-Bus when it needs it (a mask would stop that), and hostapd runs from the box's own
 * unit (onionbox-hostapd.service, under its own user) with onionboxd's rendered config, never Debian's.
 */
export const DISABLED_UNITS: readonly string[] = ['wpa_supplicant.service', 'hostapd.service'];

/** Units the image enables itself (besides what systemd's presets and the packages enable). */
export const ENABLED_BY_IMAGE: readonly string[] = [
  'onionbox-lockdown.service',
  'onionboxd.service',
  // the page in its own process (issue 23)
  'onionbox-web.service',
  // restart dnsmasq's and hostapd's units when onionboxd writes their configuration (issue 23)
  'onionbox-dnsmasq.path',
  'onionbox-hostapd.path',
  // the connection assist's Moat client, as tor's user, when onionboxd writes a job (issue 21)
  'onionbox-moat.path',
  // WantedBy=onionboxd.service: starts after onionboxd has written the torrc
  'onionbox-tor.service',
  // the first boot's two steps: the table before /data is mounted, the data file system's grow after
  'onionbox-relayout.service',
  'onionbox-firstboot.service',
  'onionbox-mark-good.path',
  // the restart after an installed update, asked for by onionboxd through /run/onionbox (no polkitd)
  'onionbox-reboot.path',
  // 15 minutes after boot, root rolls back a trial of a newly installed slot that was not marked good
  'onionbox-trial.timer',
  // test only: all five are skipped unless QEMU hands the guest the fw_cfg item opt/onionbox/selftest
  // (the update part also needs opt/onionbox/selftest-update: npm run image:update-test; the rollback
  // part opt/onionbox/selftest-rollback: npm run image:rollback-test)
  'onionbox-selftest-early.service',
  'onionbox-selftest.service',
  'onionbox-selftest-wifi.service',
  'onionbox-selftest-update.service',
  'onionbox-selftest-rollback.service',
];

/**
 * Every unit allowed to be enabled in the image (what `systemctl list-unit-files --state=enabled` and the
 * symlinks under /etc/systemd/system/*.wants show). Anything else enabled fails the check.
 */
export const ALLOWED_ENABLED_UNITS: readonly string[] = [
  ...ENABLED_BY_IMAGE,
  'NetworkManager.service',
  'NetworkManager-dispatcher.service',
  'NetworkManager-wait-online.service',
  'getty@.service',
  'serial-getty@.service',
  'remote-fs.target',
  'systemd-pstore.service',
  'systemd-network-generator.service',
  'dbus-org.freedesktop.nm-dispatcher.service',
  // RAUC's D-Bus service (rauc-service); it answers `rauc status` and writes U-Boot's environment
  'rauc.service',
];

/** A socket the image may listen on: protocol and local address:port, and which program owns it. */
export interface AllowedSocket {
  proto: 'tcp' | 'udp';
  /**
   * local address as `ss` prints it (`*` for any address), or `wan`: the box's WAN address, whatever its
   * lease gave it (the checker is told the address; without it a `wan` entry matches nothing)
   */
  address: string;
  port: number;
  program: string;
  why: string;
}

/**
 * Listening sockets allowed on a running box (LAN 10.42.0.1 by default). Everything else listening (an
 * SSH server, avahi, a DNS resolver on the WAN, a debug port) fails the check.
 */
export const ALLOWED_SOCKETS: readonly AllowedSocket[] = [
  { proto: 'tcp', address: '10.42.0.1', port: 80, program: 'node', why: 'the web page, LAN only' },
  {
    proto: 'tcp',
    address: '127.0.0.1',
    port: 9050,
    program: 'tor',
    why: "tor's SocksPort (the box's checks)",
  },
  { proto: 'tcp', address: '10.42.0.1', port: 9040, program: 'tor', why: "tor's TransPort for the LAN" },
  { proto: 'udp', address: '10.42.0.1', port: 5353, program: 'tor', why: "tor's DNSPort for the LAN" },
  { proto: 'udp', address: '*', port: 67, program: 'dnsmasq', why: 'DHCP for the LAN (port=0: no DNS)' },
  {
    proto: 'udp',
    address: '0.0.0.0',
    port: 67,
    program: 'dnsmasq',
    why: 'DHCP for the LAN (port=0: no DNS)',
  },
  { proto: 'udp', address: '*', port: 68, program: 'NetworkManager', why: 'DHCP client on the WAN' },
  { proto: 'udp', address: '0.0.0.0', port: 68, program: 'NetworkManager', why: 'DHCP client on the WAN' },
  {
    proto: 'udp',
    address: 'wan',
    port: 68,
    program: 'NetworkManager',
    why: "DHCP client on the WAN: renewals go out from the leased address (NetworkManager's internal client binds it)",
  },
];

/**
 * Paths removed from the root after the packages are in: documentation, man pages, locales, apt's lists
 * and caches, the npm cache. Relative to the root, shell globs.
 */
export const REMOVE_PATHS: readonly string[] = [
  'usr/share/man/*',
  'usr/share/info/*',
  'usr/share/locale/*',
  'usr/share/lintian/*',
  'var/lib/apt/lists/*',
  'var/cache/apt/*',
  'var/cache/debconf/*-old',
  'var/log/*',
  'root/.npm',
  'root/.cache',
  'tmp/*',
  'var/tmp/*',
  // the Pi's boot firmware (21 MB): the build copies it to the FAT partition, the only place the Pi's
  // boot ROM reads it; nothing on the box copies it again (a read-only slot never runs raspi-firmware's
  // kernel hooks, and an update writes a slot, never the FAT), so the slot's copy was never read
  'usr/lib/raspi-firmware/*',
  // klibc's utilities (2.5 MB) exist for mkinitramfs; the initrd is built, a read-only slot never rebuilds it
  'usr/lib/klibc/bin/*',
  // corepack (3.5 MB) fetches package managers (yarn, pnpm); the box runs node, never a package manager
  'usr/share/nodejs/corepack',
  'usr/bin/corepack',
  // TypeScript's declarations of Debian's node modules (2 MB): node never reads a .d.ts
  'usr/share/nodejs/@types',
  // udev's hardware database (13 MB): names and quirks for keyboards, mice, sensors; a box needs none
  'usr/lib/udev/hwdb.bin',
  'usr/lib/udev/hwdb.d/*',
  'etc/udev/hwdb.bin',
  // Broadcom/Cypress Wi-Fi firmware for PCIe and USB chips and Bluetooth patches: the Pis' radios are SDIO
  'usr/lib/firmware/brcm/*-pcie*',
  'usr/lib/firmware/cypress/*-pcie*',
  'usr/lib/firmware/brcm/*-usb*',
  'usr/lib/firmware/cypress/*-usb*',
  'usr/lib/firmware/brcm/*.hcd',
  'usr/lib/firmware/cypress/*.hcd',
];

/**
 * glibc's iconv modules (about 20 MB) the image keeps: UTF-8, UTF-16/32, UCS-2/4 and ASCII are built into
 * glibc; Latin-1 is what NetworkManager (GLib) falls back to for an SSID that is not UTF-8.
 */
export const GCONV_KEEP: readonly string[] = ['ISO8859-1.so', 'ISO8859-15.so'];

/**
 * Files in the production node_modules a running box never reads: documentation, type declarations,
 * TypeScript sources and source maps (find -name patterns). Licences stay.
 */
export const NODE_MODULES_PRUNE: readonly string[] = [
  '*.md',
  '*.markdown',
  '*.d.ts',
  '*.d.mts',
  '*.d.cts',
  '*.ts',
  '*.mts',
  '*.cts',
  '*.map',
  '.eslintrc*',
  '.prettierrc*',
  '.npmignore',
  '.editorconfig',
];

/**
 * Kernel module directories (under lib/modules/VERSION/kernel/) a Raspberry Pi 3/4/400/Zero 2 W never
 * loads: other SoCs' drivers, GPUs, sound, InfiniBand, big-iron storage and network cards, media.
 * What stays: bcm2835/brcmstb, USB, MMC, brcmfmac, the netfilter modules nft needs, virtio (the
 * emulated boot test), the file systems the box uses, and device-mapper (drivers/md, 1.2 MB: RAUC opens
 * a `verity` bundle with dm-verity; without it no update can install).
 */
export const REMOVE_MODULE_DIRS: readonly string[] = [
  'sound',
  'drivers/gpu',
  'drivers/media',
  'drivers/infiniband',
  'drivers/ata',
  'drivers/nvme',
  'drivers/target',
  'drivers/isdn',
  'drivers/staging',
  'drivers/iio',
  'drivers/input/touchscreen',
  'drivers/input/joystick',
  'drivers/input/misc',
  'drivers/bluetooth',
  'drivers/net/ethernet/mellanox',
  'drivers/net/ethernet/intel',
  'drivers/net/ethernet/chelsio',
  'drivers/net/ethernet/broadcom/bnxt',
  'drivers/net/ethernet/qlogic',
  'drivers/net/ethernet/marvell',
  'drivers/net/ethernet/cavium',
  'drivers/net/ethernet/huawei',
  'drivers/net/ethernet/hisilicon',
  'drivers/net/ethernet/amazon',
  'drivers/net/ethernet/freescale',
  'drivers/net/ethernet/stmicro',
  'drivers/net/ethernet/qualcomm',
  'drivers/net/ethernet/mediatek',
  'drivers/net/ethernet/sfc',
  'drivers/net/ethernet/netronome',
  'drivers/net/ethernet/pensando',
  'drivers/net/ethernet/emulex',
  'drivers/net/ethernet/amd',
  'drivers/net/ethernet/cisco',
  'drivers/net/ethernet/ti',
  'drivers/net/ethernet/renesas',
  'drivers/net/ethernet/rockchip',
  'drivers/net/wireless/ath',
  'drivers/net/wireless/intel',
  'drivers/net/wireless/mediatek',
  'drivers/net/wireless/realtek',
  'drivers/net/wireless/marvell',
  'drivers/net/wireless/ti',
  'drivers/net/wireless/quantenna',
  'drivers/net/can',
  'drivers/net/wwan',
  'drivers/net/ipa',
  'drivers/net/dsa',
  'drivers/crypto/hisilicon',
  'drivers/crypto/marvell',
  'drivers/crypto/caam',
  'drivers/crypto/ccree',
  'drivers/crypto/qat',
  'drivers/accel',
  'drivers/remoteproc',
  'drivers/interconnect/qcom',
  'drivers/clk/qcom',
  'drivers/pinctrl/qcom',
  'drivers/phy/qualcomm',
  'drivers/soc/qcom',
  'drivers/mtd',
  'drivers/ufs',
  'drivers/vfio',
  'drivers/thunderbolt',
  'drivers/edac',
  'drivers/fpga',
  'drivers/misc/habanalabs',
  'net/bluetooth',
  'net/mac802154',
  'net/ieee802154',
  'net/can',
  'net/rds',
  'net/sunrpc',
  'fs/nfs',
  'fs/nfsd',
  'fs/ceph',
  'fs/smb',
  'fs/ocfs2',
  'fs/gfs2',
  'fs/btrfs',
  'fs/xfs',
  'fs/f2fs',
  'fs/jfs',
  'fs/nilfs2',
  'fs/bcachefs',
  'fs/ubifs',
  'drivers/net/wireless/microchip',
  'drivers/net/wireless/ralink',
  'drivers/net/wireless/rsi',
  'drivers/net/wireless/st',
  'drivers/net/wireless/zydas',
  'drivers/net/wireless/atmel',
  'drivers/net/wireless/intersil',
  'drivers/net/wireless/silabs',
  'drivers/net/ethernet/aquantia',
  'drivers/net/ethernet/atheros',
  'drivers/net/ethernet/realtek',
  'drivers/net/ethernet/microchip',
  'drivers/net/ethernet/synopsys',
  'drivers/net/ethernet/wangxun',
  'drivers/net/ethernet/google',
  'drivers/net/ethernet/socionext',
  'drivers/scsi/mpt3sas',
  'drivers/scsi/megaraid',
  'drivers/scsi/qla2xxx',
  'drivers/scsi/lpfc',
  'drivers/scsi/hisi_sas',
  'drivers/scsi/aacraid',
  'drivers/scsi/be2iscsi',
  'drivers/scsi/bnx2fc',
  'drivers/scsi/smartpqi',
  'drivers/scsi/mpi3mr',
];

/**
 * Device-tree vendor directories under usr/lib/linux-image-VERSION/ that stay: raspi-firmware copies
 * broadcom/bcm*.dtb to the boot partition; every other SoC vendor's trees (about 55 MB) go.
 */
export const KEEP_DTB_DIRS: readonly string[] = ['broadcom'];

/** Plain-language names for the boards the image supports (all 64-bit). */
export const BOARDS: readonly string[] = [
  'Raspberry Pi 3',
  'Raspberry Pi 4',
  'Raspberry Pi 400',
  'Raspberry Pi Zero 2 W',
];

/** Raspberry Pi Imager device tags: pi3-64bit covers the Zero 2 W, pi4-64bit covers the 400. */
export const IMAGER_DEVICES: readonly string[] = ['pi3-64bit', 'pi4-64bit'];

/** The system user onionboxd runs as (tor's debian-tor comes with the tor package). */
export const FIRMWARE_USER = 'onionbox';

/**
 * The system users of the units onionboxd configures but does not run (issue 23), each with its own
 * group of the same name: dnsmasq (onionbox-dnsmasq.service) and hostapd (onionbox-hostapd.service).
 * onionboxd's unit takes both groups as supplementary groups (their leases and PID files).
 */
export const HELPER_USERS: readonly string[] = ['onionbox-dhcp', 'onionbox-ap'];
