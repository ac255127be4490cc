/**
 * A rule's delivery settings in the console (what src/core/policy.ts merges): one form part shared by
 * the create and edit forms, and a one-line summary for the rules table. Empty inputs mean "the stage's
 * default" (null in the API); the API checks every value and names the field it refuses.
 */
import type { RulePolicyColumns as DeliverySettings } from "../../adapters/rule-source.ts";
import { field, h } from "./dom.ts";

export interface DeliveryForm {
  el: HTMLElement;
  values(): DeliverySettings;
  fill(rule: DeliverySettings): void;
}

const numberOrNull = (input: HTMLInputElement) => (input.value.trim() === "" ? null : Number(input.value));
const listOf = (text: string, separator: RegExp) =>
  text
    .split(separator)
    .map((item) => item.trim())
    .filter((item) => item !== "");

export function deliveryForm(testid: string): DeliveryForm {
  const sendResolved = h("input", {
    type: "checkbox",
    checked: true,
    "data-testid": `${testid}-send-resolved`,
  });
  const number = (name: string, placeholder: string) =>
    h("input", { type: "number", placeholder, "data-testid": `${testid}-${name}`, class: "short" });
  const repeat = number("repeat", "default");
  const groupBy = h("input", { placeholder: "e.g. source, team", "data-testid": `${testid}-group-by` });
  // Empty takes the aggregator's GROUP_* default, which this page does not know.
  const groupWait = number("group-wait", "default");
  const groupInterval = number("group-interval", "default");
  const groupMax = number("group-max", "default");
  const mute = h("textarea", {
    rows: 2,
    placeholder: "monday:friday 22:00-06:00 Europe/Berlin",
    "data-testid": `${testid}-mute`,
  });
  const set = (input: HTMLInputElement, value: number | null) => {
    input.value = value === null ? "" : String(value);
  };
  return {
    el: h(
      "details",
      { class: "delivery" },
      h("summary", null, "delivery: grouping, repeats, mute windows"),
      h(
        "div",
        { class: "row" },
        h("label", { class: "check" }, sendResolved, " send resolved"),
        field("repeat every (ms)", repeat),
        field("group by (labels)", groupBy),
        field("group wait (ms)", groupWait),
        field("group interval (ms)", groupInterval),
        field("alerts per message", groupMax),
      ),
      field("mute windows (one per line)", mute),
    ),
    values: () => ({
      send_resolved: sendResolved.checked,
      repeat_interval_ms: numberOrNull(repeat),
      group_by: listOf(groupBy.value, /,/),
      group_wait_ms: numberOrNull(groupWait),
      group_interval_ms: numberOrNull(groupInterval),
      group_alerts_max: numberOrNull(groupMax),
      mute_windows: listOf(mute.value, /\n/),
    }),
    fill: (rule) => {
      sendResolved.checked = rule.send_resolved;
      set(repeat, rule.repeat_interval_ms);
      groupBy.value = rule.group_by.join(", ");
      set(groupWait, rule.group_wait_ms);
      set(groupInterval, rule.group_interval_ms);
      set(groupMax, rule.group_alerts_max);
      mute.value = rule.mute_windows.join("\n");
    },
  };
}

/** "grouped by source (wait 10 s, every 60 s, 50 listed) · repeat 60 s · 2 mute windows", or "defaults". */
export function deliverySummary(rule: DeliverySettings): string {
  const timing = [
    rule.group_wait_ms === null ? "" : `wait ${rule.group_wait_ms / 1000} s`,
    rule.group_interval_ms === null ? "" : `every ${rule.group_interval_ms / 1000} s`,
    rule.group_alerts_max === null ? "" : `${rule.group_alerts_max} listed`,
  ].filter((part) => part !== "");
  const parts = [
    rule.group_by.length > 0
      ? `grouped by ${rule.group_by.join(", ")}${timing.length > 0 ? ` (${timing.join(", ")})` : ""}`
      : "",
    rule.send_resolved ? "" : "no resolved",
    rule.repeat_interval_ms === null ? "" : `repeat ${rule.repeat_interval_ms / 1000} s`,
    rule.mute_windows.length === 0
      ? ""
      : `${rule.mute_windows.length} mute window${rule.mute_windows.length === 1 ? "" : "s"}`,
  ].filter((part) => part !== "");
  return parts.length === 0 ? "defaults" : parts.join(" · ");
}
