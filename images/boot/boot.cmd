# Onionbox boot script: the same file on a Raspberry Pi (U-Boot from Debian's u-boot-rpi) and in QEMU virt
# (u-boot-qemu). images/build turns it into boot.scr with mkimage; U-Boot finds boot.scr on the first
# partition (FAT, bootable) and runs it.
#
# Slots: partition 2 is slot A, partition 3 slot B; each is a whole system with its own /boot/vmlinuz,
# /boot/initrd.img and /boot/dtbs/. Which one boots is decided here, with the variables RAUC's U-Boot
# backend reads and writes (through fw_setenv):
#   BOOT_ORDER     "A B" or "B A": the preferred slot first
#   BOOT_A_LEFT    tries left for slot A (3 after an install or a mark-good, 0 = bad)
#   BOOT_B_LEFT    the same for slot B
# The first slot of BOOT_ORDER with tries left loses one, the environment is saved, then that slot boots.
# A slot that cannot even be loaded gets 0 tries and the board resets. When no slot has tries left, both
# get 3 again (a box must never stop trying). The running system marks its slot good (3 tries again) only
# when the box routes, or after some healthy minutes without a WAN (firmware/update/slot.ts).
#
# The environment is onionbox.env on the FAT partition: 16 KiB, CRC32 first (`env export -c`), the format
# libubootenv's fw_printenv/fw_setenv read and write (/etc/fw_env.config). It is not U-Boot's own uboot.env:
# on a Pi, U-Boot would take that file as its whole environment and lose its defaults. Only the three
# variables above are read from it, and only values this script knows are kept. A file that is missing or
# torn (bad CRC) gives the defaults, "A B" with 3 tries each: slot A is the flashed system and, after an
# update, the previous good one; a slot that fails still loses its tries and the other slot boots.
# A kernel panic reboots after 10 s (panic=10, which the initramfs honours too when the root cannot be
# mounted); on a Pi the hardware watchdog resets a hung system (RuntimeWatchdogSec=).

setenv obx_envfile onionbox.env
setenv obx_envsize 0x4000
if test "${board}" = "qemu-arm"; then
	# QEMU virt: RAM at 1 GiB, the PL011 console; PL061 line 3 (QEMU's power button) is the emulated
	# board's kill switch, so gpio-keys must not take it
	setenv obx_ram 0x40000000
	setenv obx_console "console=ttyAMA0"
	setenv obx_board_args "module_blacklist=gpio_keys"
else
	# Raspberry Pi 3, 4, 400, Zero 2 W: RAM at 0; the screen, then the mini UART on GPIO 14/15
	setenv obx_ram 0x0
	setenv obx_console "console=tty0 console=ttyS1,115200"
	setenv obx_board_args ""
fi
# our own load addresses, the same layout on both boards (the kernel image is about 40 MB unpacked, the
# initrd under 64 MB; a Zero 2 W has 512 MB, U-Boot sits at its top). A slot's /boot/vmlinuz is
# gzip-compressed (about 13 MB instead of 38): booti unpacks it into the scratch area at
# kernel_comp_addr_r (after the initrd's 64 MB) and moves it to where it was loaded; an uncompressed one
# (a slot written by an older release) boots as it is.
setexpr obx_env_addr ${obx_ram} + 0x03000000
setexpr obx_fdt_addr ${obx_ram} + 0x03800000
setexpr obx_kernel_addr ${obx_ram} + 0x04000000
setexpr obx_initrd_addr ${obx_ram} + 0x08000000
setexpr kernel_comp_addr_r ${obx_ram} + 0x0C000000

setenv obx_save 'env export -c -s ${obx_envsize} ${obx_env_addr} BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT && fatwrite ${devtype} ${devnum}:1 ${obx_env_addr} ${obx_envfile} ${obx_envsize}'

setenv BOOT_ORDER
setenv BOOT_A_LEFT
setenv BOOT_B_LEFT
if fatload ${devtype} ${devnum}:1 ${obx_env_addr} ${obx_envfile} && env import -c ${obx_env_addr} ${obx_envsize} BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT; then
	echo "Onionbox: slot states read from ${obx_envfile}"
else
	echo "Onionbox: ${obx_envfile} is missing or damaged: the defaults (A first, 3 tries each)"
fi
if test "${BOOT_ORDER}" != "A B" && test "${BOOT_ORDER}" != "B A"; then
	setenv BOOT_ORDER "A B"
fi
if test "${BOOT_A_LEFT}" != 0 && test "${BOOT_A_LEFT}" != 1 && test "${BOOT_A_LEFT}" != 2 && test "${BOOT_A_LEFT}" != 3; then
	setenv BOOT_A_LEFT 3
fi
if test "${BOOT_B_LEFT}" != 0 && test "${BOOT_B_LEFT}" != 1 && test "${BOOT_B_LEFT}" != 2 && test "${BOOT_B_LEFT}" != 3; then
	setenv BOOT_B_LEFT 3
fi
echo "Onionbox: BOOT_ORDER=${BOOT_ORDER} BOOT_A_LEFT=${BOOT_A_LEFT} BOOT_B_LEFT=${BOOT_B_LEFT}"

setenv obx_slot
if test "${BOOT_ORDER}" = "B A"; then
	if test ${BOOT_B_LEFT} -gt 0; then
		setenv obx_slot B
	elif test ${BOOT_A_LEFT} -gt 0; then
		setenv obx_slot A
	fi
else
	if test ${BOOT_A_LEFT} -gt 0; then
		setenv obx_slot A
	elif test ${BOOT_B_LEFT} -gt 0; then
		setenv obx_slot B
	fi
fi

if test -z "${obx_slot}"; then
	echo "Onionbox: no slot has tries left: both get 3 again, then a reset"
	setenv BOOT_A_LEFT 3
	setenv BOOT_B_LEFT 3
	run obx_save
	reset
fi

# decrement, save, then boot
if test "${obx_slot}" = "A"; then
	setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1
	setenv obx_part 2
else
	setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1
	setenv obx_part 3
fi
if run obx_save; then
	echo "Onionbox: booting slot ${obx_slot} (BOOT_A_LEFT=${BOOT_A_LEFT} BOOT_B_LEFT=${BOOT_B_LEFT} saved)"
else
	echo "Onionbox: WARNING: could not save ${obx_envfile}: this boot is not counted"
fi

setenv obx_partuuid
part uuid ${devtype} ${devnum}:${obx_part} obx_partuuid
if test -n "${obx_partuuid}" && ext4load ${devtype} ${devnum}:${obx_part} ${obx_kernel_addr} /boot/vmlinuz && setenv kernel_comp_size ${filesize} && ext4load ${devtype} ${devnum}:${obx_part} ${obx_initrd_addr} /boot/initrd.img; then
	setenv obx_initrd_size ${filesize}
	# the slot's own device tree for this board (U-Boot's rpi code names it in fdtfile); else the one
	# the firmware (Pi) or QEMU handed to U-Boot
	if test -n "${fdtfile}" && ext4load ${devtype} ${devnum}:${obx_part} ${obx_fdt_addr} /boot/dtbs/${fdtfile}; then
		setenv obx_fdt ${obx_fdt_addr}
	elif test -n "${fdt_addr}"; then
		setenv obx_fdt ${fdt_addr}
	else
		setenv obx_fdt ${fdtcontroladdr}
	fi
	setenv bootargs "${obx_console} root=PARTUUID=${obx_partuuid} ro rootwait panic=10 fsck.repair=yes net.ifnames=0 rauc.slot=${obx_slot} ${obx_board_args}"
	booti ${obx_kernel_addr} ${obx_initrd_addr}:${obx_initrd_size} ${obx_fdt}
fi

echo "Onionbox: slot ${obx_slot} could not be loaded or booted: it gets no more tries"
setenv BOOT_${obx_slot}_LEFT 0
run obx_save
reset
