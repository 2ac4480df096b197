// Copies non-TypeScript assets (Lua scripts) next to the compiled JavaScript.
import { cpSync, existsSync } from 'node:fs';

if (existsSync('src/distributed/lua')) {
  cpSync('src/distributed/lua', 'dist/src/distributed/lua', { recursive: true });
}
