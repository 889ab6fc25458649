// node-greet: returns {"greeting": "hello, <input.name>"}, "world" when no name is given.
import { run } from "agentd";

run(async (ctx) => {
  const name = ctx.input?.name ?? "world";
  ctx.log(`greeting ${name}`);
  return { greeting: "hello, " + name };
});
