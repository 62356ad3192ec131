/** A benchmark metric. Each issue adds its metrics as a module listed in scripts/bench/index.ts. */
export interface BenchResult {
  /** e.g. "firmware start -> first HTTP answer" */
  name: string;
  value: number;
  unit: string;
  /** Human-readable goal, e.g. "< 1500 ms". */
  goal: string;
  pass: boolean;
  /** Extra numbers (p50/p99, samples, ...). */
  detail?: Record<string, number | string>;
}

export interface BenchSuite {
  readonly name: string;
  /** Set when the suite needs root (namespaces, nft) or tor. */
  readonly needs?: readonly ('root' | 'tor' | 'nft')[];
  run(): Promise<BenchResult[]>;
}
