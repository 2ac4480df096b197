// A command op: reads its inputs from $BATON_INPUTS and writes its output to $BATON_OUTPUT.
import { readFileSync, writeFileSync } from 'node:fs';

const inputs = JSON.parse(readFileSync(process.env.BATON_INPUTS, 'utf8'));
console.log(`publishing reports for run ${process.env.BATON_RUN_ID}: ${Object.keys(inputs).join(', ')}`);
writeFileSync(process.env.BATON_OUTPUT, JSON.stringify({ published: Object.keys(inputs).length }));
