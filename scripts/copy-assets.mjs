// Copies non-TypeScript assets (Lua scripts) next to the compiled JavaScript, and makes the two
// package bins executable so `./dist/cli/main.js` runs through its shebang like `npx coordinator`.
import { chmodSync, cpSync, existsSync } from 'node:fs';

if (existsSync('src/distributed/lua')) {
  cpSync('src/distributed/lua', 'dist/src/distributed/lua', { recursive: true });
}
for (const bin of ['dist/cli/main.js', 'dist/worker/main.js']) {
  if (existsSync(bin)) chmodSync(bin, 0o755);
}
