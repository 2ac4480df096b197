import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

/** A process logger: JSON lines on stderr, or readable lines when stderr is a terminal. */
export function createProcessLogger(name: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  if (process.stderr.isTTY) {
    return pino({ name, level }, pretty({ destination: 2, colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' }));
  }
  return pino({ name, level }, pino.destination({ dest: 2, sync: true }));
}
