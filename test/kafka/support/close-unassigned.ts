/**
 * Run by test/kafka/close.test.ts. Arguments: brokers, group id, topic, mode.
 *   hold   consume until assigned, say so, then keep polling (the test freezes this process);
 *   close  consume for 500 ms (the group's rebalance waits for the frozen member meanwhile), close
 *          the consumer without an assignment, and exit 0.
 * Logs go to stdout.
 */
import { Consumer } from "../../../src/kafka/index.ts";
import { createLogger } from "../../../src/runtime/log.ts";

const [brokers, groupId, topic, mode] = process.argv.slice(2) as [string, string, string, string];
const consumer = new Consumer({ brokers, groupId, topics: [topic], logger: createLogger(mode) });
if (mode === "hold") {
  while (consumer.assignment().length === 0) await consumer.consume(10, 100);
  console.log("assigned");
  for (;;) await consumer.consume(10, 100);
}
await consumer.consume(10, 500);
const assigned = consumer.assignment().length;
await consumer.close();
console.log(JSON.stringify({ assignedBeforeClose: assigned }));
