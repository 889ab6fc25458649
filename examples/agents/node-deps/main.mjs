// node-deps: tells whether input.value (default "42") is a number, with is-number from
// package.json (installed at deploy time into /node_modules), and returns
// {"value": "42", "is_number": true}.
import isNumber from "is-number";
import { run } from "agentd";

run(async (ctx) => {
  const value = ctx.input?.value ?? "42";
  ctx.log(`checking ${JSON.stringify(value)} with is-number`);
  return { value, is_number: isNumber(value) };
});
