import { describe, expect, it } from "vitest";
import type { Port } from "../api/types";
import { emptyValues, fieldLabels, fieldsFromPorts, inputErrors, toInputs } from "./inputs";

const port = (name: string, type: string, required = true): Port => ({ name, type, required, description: "" });

describe("typed inputs from ports", () => {
  const fields = fieldsFromPorts([port("name", "string"), port("age", "integer"), port("score", "number", false),
    port("loud", "boolean"), port("tags", "array", false), port("meta", "object", false), port("value", "any")],
  fieldLabels({ fields: [{ name: "name", label: "Your name" }, { name: "age" }] }));

  it("draws one field per port, typed, with the form's labels", () => {
    expect(fields.map((f) => [f.name, f.kind, f.label])).toEqual([
      ["name", "text", "Your name"], ["age", "integer", "age"], ["score", "number", "score"], ["loud", "boolean", "loud"],
      ["tags", "json", "tags"], ["meta", "json", "meta"], ["value", "any", "value"]]);
    expect(emptyValues(fields)).toMatchObject({ name: "", loud: false });
  });

  it("sends each value as its port's type and leaves empty optional fields out", () => {
    const { inputs, errors } = toInputs(fields, { name: "Ada", age: "36", score: "", loud: true, tags: '["a"]',
      meta: "", value: "3" });
    expect(errors).toEqual({});
    expect(inputs).toEqual({ name: "Ada", age: 36, loud: true, tags: ["a"], value: 3 });
    expect(toInputs(fields, { ...emptyValues(fields), value: "plain words" }).inputs).toEqual(
      { name: "", loud: false, value: "plain words" });
  });

  it("says what is wrong with a field instead of sending it", () => {
    const { errors } = toInputs(fields, { name: "x", age: "3.5", score: "lots", loud: false, tags: "{}", meta: "{oops",
      value: "" });
    expect(errors.age).toBe("Enter a whole number.");
    expect(errors.score).toBe("Enter a number.");
    expect(errors.tags).toBe("Enter a JSON list ([...]).");
    expect(errors.meta).toMatch(/^Not valid JSON/);
    expect(errors.name).toBeUndefined();
  });

  it("puts the API's refusals next to the input they name", () => {
    const body = { detail: [
      { loc: ["body", "inputs", "age"], msg: "Input should be a valid integer" },
      { loc: ["body", "inputs", "age"], msg: "too old" },
      { loc: ["body", "side_effects"], msg: "this node sends an SMS" }] };
    expect(inputErrors(body, "failed")).toEqual({
      fields: { age: "Input should be a valid integer; too old" }, form: "this node sends an SMS" });
    expect(inputErrors({ detail: "app not found" }, "failed")).toEqual({ fields: {}, form: "app not found" });
  });
});
