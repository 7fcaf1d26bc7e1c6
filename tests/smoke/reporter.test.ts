import { expect, it } from 'vitest';
it('runs under Bun', () => {
  expect(typeof Bun.version).toBe('string');
});
