/** The Redis instance (in progress). */
import { BatonError } from '../../errors.js';
import type { Instance } from '../types.js';

export function openRedisInstance(_url: string): Promise<Instance> {
  return Promise.reject(new BatonError('USAGE', 'the Redis instance is not built yet'));
}
