/**
 * Closing a consumer before its group gave it an assignment, as a stage stopped while its group waits
 * for a member killed with -9. With Debian 12's librdkafka, destroying such a consumer aborts the
 * process when the group's JoinGroup has answered and its SyncGroup not yet
 * (confluentinc/librdkafka#4312; seen once in six runs of test/sender/grouping.test.ts). That window
 * cannot be forced from outside, so this checks the path that avoids it: a consumer closed while its
 * JoinGroup waits is not destroyed, and its process still exits 0.
 */
import { expect, test } from "bun:test";
import { brokers, kafkaClients } from "../../harness/kafka.ts";
import { uniqueName } from "../../harness/names.ts";
import { eventually } from "../../harness/stages.ts";

const { admin } = kafkaClients();
const script = "test/kafka/support/close-unassigned.ts";

test("a consumer closed before its first assignment leaves its process able to exit 0", async () => {
  const topic = uniqueName("close-unassigned");
  const group = uniqueName("g");
  await admin.createTopics([{ name: topic, partitions: 2 }]);
  // A member that holds the group's partitions, then freezes: a rebalance waits for it.
  const holder = Bun.spawn([process.execPath, script, brokers, group, topic, "hold"], { stdout: "pipe" });
  try {
    let held = "";
    const reader = holder.stdout.getReader();
    expect(
      await eventually(async () => {
        const { value } = await reader.read();
        held += new TextDecoder().decode(value);
        return held.includes("assigned\n");
      }, 30_000),
    ).toBe(true);
    holder.kill("SIGSTOP");

    const closer = Bun.spawn([process.execPath, script, brokers, group, topic, "close"], {
      stdout: "pipe",
      stderr: "pipe",
    });
    const [code, stdout, stderr] = await Promise.all([
      closer.exited,
      new Response(closer.stdout).text(),
      new Response(closer.stderr).text(),
    ]);
    expect({ code, stderr: stderr.slice(0, 400) }).toEqual({ code: 0, stderr: "" });
    expect(stdout).toContain('"assignedBeforeClose":0');
    expect(stdout).toContain("consumer closed before its first assignment");
  } finally {
    holder.kill("SIGKILL");
  }
}, 60_000);
