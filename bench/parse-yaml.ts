/** js-yaml's bare parse of one file, as a whole process: what `coordinator validate` is measured against. */
import { readFileSync } from 'node:fs';
import { load } from 'js-yaml';

const file = process.argv[2];
if (!file) throw new Error('usage: parse-yaml FILE');
load(readFileSync(file, 'utf8'));
