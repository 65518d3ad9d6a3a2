import { describe, expect, it } from "vitest";
import { formErrors } from "./fieldErrors";

describe("formErrors", () => {
  it("puts each message next to the field its loc names", () => {
    const error = { detail: [
      { loc: ["body", "access_code"], msg: "String should have at least 4 characters", type: "string_too_short" },
      { loc: ["body", "embed_origins", 1], msg: "'ftp://x' is not an origin", type: "value_error" },
      { loc: ["body", "embed_origins", 2], msg: "'y' is not an origin", type: "value_error" },
    ] };
    expect(formErrors(error, ["access_code", "embed_origins"])).toEqual({
      fields: {
        access_code: "String should have at least 4 characters",
        embed_origins: "'ftp://x' is not an origin; 'y' is not an origin",
      },
      form: "",
    });
  });

  it("says what no field owns for the whole form", () => {
    const error = { detail: [
      { loc: ["app_id"], msg: "publish the app before routing a number to it", type: "invalid" },
      { loc: ["body", "number"], msg: "bad number", type: "invalid" },
      { loc: ["body"], msg: "the draft starts with trigger.api", type: "conflict" },
    ] };
    expect(formErrors(error, ["number"])).toEqual({
      fields: { number: "bad number" },
      form: "publish the app before routing a number to it; the draft starts with trigger.api",
    });
  });

  it("falls back to a sentence for other failures", () => {
    expect(formErrors(new Error("Failed to fetch"), ["x"])).toEqual({ fields: {}, form: "Failed to fetch" });
    expect(formErrors({ detail: "Not allowed" }, ["x"])).toEqual({ fields: {}, form: "Not allowed" });
    expect(formErrors(undefined, ["x"], "Saving failed.")).toEqual({ fields: {}, form: "Saving failed." });
  });
});
