// {{name}}: greets input.name ("world" when there is none) and returns
// {"greeting": "hello, <name>"}.
//
// run() reads the invocation from stdin, calls the handler and sends what it returns as the
// run's output on fd 3; a thrown error fails the run with its stack in the logs.
import { run } from "agentd";

run(async (ctx) => {
  const name = typeof ctx.input?.name === "string" ? ctx.input.name : "world";
  ctx.log(`greeting ${name}`);
  return { greeting: `hello, ${name}` };
});
