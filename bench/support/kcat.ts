/**
 * kcat, the same librdkafka driven from C: the I/O limit of this machine that the Kafka and pipeline
 * benches compare themselves with (bench/kafka.ts, bench/evaluator.ts, bench/pipeline/ceilings.ts).
 */
import { runCommand, shellWords } from "./common.ts";

/**
 * kcat produces as our Producer does: idempotent (acks=all), same partitioner; `key TAB value`
 * records, one a line unless `delimiter` (a kcat -D escape) ends them instead.
 */
export function kcatProduceArgs(brokers: string, topic: string, delimiter?: string): string[] {
  return [
    "-P",
    "-b",
    brokers,
    "-t",
    topic,
    "-K",
    "\\t",
    ...(delimiter === undefined ? [] : ["-D", delimiter]),
    "-X",
    "enable.idempotence=true",
    "-X",
    "partitioner=murmur2_random",
  ];
}

/** A fresh group from the earliest offset; -e exits once every assigned partition reached its end. */
export function kcatConsumeArgs(brokers: string, topic: string, group: string, format: string): string[] {
  return [
    "-C",
    "-b",
    brokers,
    "-G",
    group,
    "-X",
    "auto.offset.reset=earliest",
    "-e",
    "-q",
    "-f",
    format,
    topic,
  ];
}

/** Produces every line of a `key TAB value` file, until all are acknowledged. */
export async function kcatProduceFile(brokers: string, topic: string, path: string): Promise<void> {
  await runCommand(["kcat", ...kcatProduceArgs(brokers, topic), "-l", path]);
}

/**
 * Consumes a whole topic with a fresh group; returns how many records of `valueBytes` each it saw.
 * kcat prints each value and a newline; wc counts the bytes, so kcat is not slowed by its reader.
 */
export async function kcatConsumeCount(
  brokers: string,
  topic: string,
  group: string,
  valueBytes: number,
): Promise<number> {
  const consume = shellWords(["kcat", ...kcatConsumeArgs(brokers, topic, group, "%s\\n")]);
  const bytes = Number(await runCommand(["bash", "-o", "pipefail", "-c", `${consume} | wc -c`]));
  return bytes / (valueBytes + 1);
}

/** `kcat -C | kcat -P`: the topic's records copied to another topic, a consume -> produce hop. */
export async function kcatPassthrough(options: {
  brokers: string;
  topicIn: string;
  topicOut: string;
  group: string;
  /** A kcat escape that ends each record instead of a newline (values that may hold newlines). */
  delimiter?: string;
}): Promise<void> {
  const { brokers, topicIn, topicOut, group, delimiter } = options;
  const format = `%k\\t%s${delimiter ?? "\\n"}`;
  const consume = shellWords(["kcat", ...kcatConsumeArgs(brokers, topicIn, group, format)]);
  const produce = shellWords(["kcat", ...kcatProduceArgs(brokers, topicOut, delimiter)]);
  await runCommand(["bash", "-o", "pipefail", "-c", `${consume} | ${produce}`]);
}
