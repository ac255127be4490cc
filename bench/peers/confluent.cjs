/**
 * The Node 20 peer of bench/kafka.ts: the same three jobs with @confluentinc/kafka-javascript, through
 * its node-rdkafka-style API (batch consume and per-record produce with delivery reports, the least JS
 * between us and librdkafka). Run by bench/kafka.ts:
 *
 *   node confluent.cjs produce     BROKERS TOPIC COUNT
 *   node confluent.cjs consume     BROKERS TOPIC GROUP COUNT
 *   node confluent.cjs passthrough BROKERS TOPIC_IN TOPIC_OUT GROUP COUNT
 *
 * Prints one JSON line {"records": N, "elapsedMs": T}; T runs from creating the clients to their
 * disconnection, as bench/kafka.ts times our client.
 */
const { Producer, KafkaConsumer } = require("@confluentinc/kafka-javascript");

const keyCount = 100_000;
const valueCount = 1000;
const valueBytes = 100;
const batchRecordsMax = 10_000;
const consumeTimeoutMs = 100;
const queueFullCode = -184;

/** Same settings as our Producer: idempotent (acks=all), same batching and partitioner. */
const producerSettings = {
  "enable.idempotence": true,
  acks: "all",
  "linger.ms": 5,
  "batch.num.messages": 10_000,
  "queue.buffering.max.messages": 200_000,
  partitioner: "murmur2_random",
  dr_cb: true,
};

/** The same keys and values as bench/kafka.ts, built once, so the job does not pay for making data. */
const keys = Array.from({ length: keyCount }, (_, i) => Buffer.from(`k${String(i).padStart(7, "0")}`));
const values = Array.from({ length: valueCount }, (_, i) =>
  Buffer.from(`v${String(i).padStart(9, "0")}`.repeat(valueBytes / 10)),
);

function connect(client) {
  return new Promise((resolve, reject) => client.connect({}, (error) => (error ? reject(error) : resolve())));
}

function disconnect(client) {
  return new Promise((resolve) => client.disconnect(() => resolve()));
}

/**
 * A connected producer. `enqueue` returns false while librdkafka's local queue is full; `produced(n)`
 * resolves once n records in total were acknowledged.
 */
async function openProducer(brokers) {
  const producer = new Producer({ "bootstrap.servers": brokers, ...producerSettings });
  let acknowledged = 0;
  let failure;
  let waiter;
  producer.on("delivery-report", (error) => {
    failure ??= error;
    acknowledged++;
    if (waiter && (failure || acknowledged >= waiter.count)) waiter.settle();
  });
  await connect(producer);
  producer.setPollInterval(1);
  return {
    producer,
    enqueue(topic, key, value) {
      try {
        producer.produce(topic, null, value, key);
        return true;
      } catch (error) {
        if (error.code !== queueFullCode) throw error;
        return false;
      }
    },
    produced(count) {
      return new Promise((resolve, reject) => {
        const settle = () => (failure ? reject(failure) : resolve());
        if (failure || acknowledged >= count) settle();
        else waiter = { count, settle };
      });
    },
  };
}

/** Lets delivery reports drain librdkafka's full local queue. */
function pause() {
  return new Promise((resolve) => setTimeout(resolve, 1));
}

async function openConsumer(brokers, topic, group) {
  const consumer = new KafkaConsumer({
    "bootstrap.servers": brokers,
    "group.id": group,
    "enable.auto.commit": false,
    "auto.offset.reset": "earliest",
  });
  await connect(consumer);
  consumer.setDefaultConsumeTimeout(consumeTimeoutMs);
  consumer.subscribe([topic]);
  return consumer;
}

function consumeBatch(consumer) {
  return new Promise((resolve, reject) =>
    consumer.consume(batchRecordsMax, (error, messages) => (error ? reject(error) : resolve(messages))),
  );
}

async function produce(brokers, topic, count) {
  const { producer, enqueue, produced } = await openProducer(brokers);
  for (let index = 0; index < count; index++) {
    const key = keys[index % keyCount];
    const value = values[index % valueCount];
    while (!enqueue(topic, key, value)) await pause();
  }
  await produced(count);
  await disconnect(producer);
  return count;
}

async function consume(brokers, topic, group, count) {
  const consumer = await openConsumer(brokers, topic, group);
  let seen = 0;
  while (seen < count) seen += (await consumeBatch(consumer)).length;
  await disconnect(consumer);
  return seen;
}

/** Per batch: produce every record to `topicOut`, wait for all acknowledgements, commit. */
async function passthrough(brokers, topicIn, topicOut, group, count) {
  const consumer = await openConsumer(brokers, topicIn, group);
  const { producer, enqueue, produced } = await openProducer(brokers);
  let forwarded = 0;
  while (forwarded < count) {
    const messages = await consumeBatch(consumer);
    if (messages.length === 0) continue;
    const nextOffsets = new Map();
    for (const message of messages) {
      while (!enqueue(topicOut, message.key, message.value)) await pause();
      nextOffsets.set(message.partition, message.offset + 1);
    }
    forwarded += messages.length;
    await produced(forwarded);
    consumer.commitSync(
      [...nextOffsets].map(([partition, offset]) => ({ topic: topicIn, partition, offset })),
    );
  }
  await Promise.all([disconnect(consumer), disconnect(producer)]);
  return forwarded;
}

const jobs = { produce, consume, passthrough };

async function main() {
  const [jobName, brokers, ...rest] = process.argv.slice(2);
  const job = jobs[jobName];
  if (!job) throw new Error(`usage: node confluent.cjs ${Object.keys(jobs).join("|")} BROKERS ...`);
  const args = rest.map((arg, i) => (i === rest.length - 1 ? Number(arg) : arg));
  const startMs = performance.now();
  const records = await job(brokers, ...args);
  console.log(JSON.stringify({ records, elapsedMs: performance.now() - startMs }));
}

main().catch((error) => {
  console.error(`confluent peer: ${error.stack ?? error}`);
  process.exit(1);
});
