// `tunsteer demo`: see src/demo.
export async function demo(): Promise<number> {
  const { runDemo } = await import('../../demo/demo.js');
  return runDemo();
}
