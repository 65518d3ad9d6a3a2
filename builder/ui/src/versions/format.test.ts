import { describe, expect, it } from "vitest";
import { actorLabel, localTime, timeInBoth } from "./format";

describe("actorLabel", () => {
  it("names a key by its name", () => {
    expect(actorLabel("key:0b9d2c1e-8f3a-4f55-9a43-1d1c6b2a7e10:release bot")).toBe("release bot (API key)");
    expect(actorLabel("ada@example.com")).toBe("ada@example.com");
  });
});

describe("localTime", () => {
  it("reads a time without a zone as UTC", () => {
    expect(localTime("2026-01-05T10:02:00")).toBe(new Date(Date.UTC(2026, 0, 5, 10, 2)).toLocaleString());
    expect(localTime("2026-01-05T10:02:00+00:00")).toBe(new Date(Date.UTC(2026, 0, 5, 10, 2)).toLocaleString());
  });
});

describe("timeInBoth", () => {
  it("adds the schedule's own zone when it is not the reader's", () => {
    const utc = new Date(Date.UTC(2026, 0, 5, 8, 0));
    const paris = utc.toLocaleString(undefined, { timeZone: "Europe/Paris" });
    const here = utc.toLocaleString();
    expect(timeInBoth("2026-01-05T08:00:00Z", "Europe/Paris")).toBe(here === paris ? here : `${here} (${paris} in Europe/Paris)`);
    expect(timeInBoth("2026-01-05T08:00:00Z", Intl.DateTimeFormat().resolvedOptions().timeZone)).toBe(here);
  });
});
