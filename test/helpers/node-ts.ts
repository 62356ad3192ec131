/**
 * Node arguments that let a child process run TypeScript sources. Under tap, reuse tap's own loader
 * (process.execArgv) so the child's coverage is recorded with the right source maps; `--import tsx`
 * in a child makes tap's coverage report collapse. Outside tap, fall back to tsx.
 */
export function nodeTsArgs(): string[] {
  const tapLoader = process.execArgv.some((a) => a.includes('@tapjs/typescript'));
  return tapLoader ? [...process.execArgv] : ['--import', 'tsx'];
}
