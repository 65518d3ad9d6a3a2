import { describe, expect, it } from "vitest";
import { type JsonSchema, fieldSpec, initialValue, objectFields, resolve, sourceOf } from "./schema";

// Shapes pydantic writes for our blocks (trimmed from GET /v1/blocks).
const fieldSpecDef: JsonSchema = {
  type: "object", required: ["name"], additionalProperties: false,
  properties: {
    name: { type: "string", pattern: "^[A-Za-z_]+$", description: "Port name." },
    type: { type: "string", enum: ["string", "number", "any"], default: "string" },
    required: { type: "boolean", default: true },
  },
};
const root: JsonSchema = {
  $defs: {
    FieldSpec: fieldSpecDef,
    PiiRule: { type: "object", properties: { entities: { type: "array", minItems: 1, items: { type: "string", enum: ["EMAIL_ADDRESS", "URL"] } } } },
  },
  type: "object",
  properties: {
    template: { type: "string", default: "{{ text }}", maxLength: 32000 },
    model: { type: "string", maxLength: 100 },
    max_new_tokens: { type: "integer", minimum: 1, maximum: 8192, default: 256 },
    top_p: { type: "number", exclusiveMinimum: 0, maximum: 1 },
    chat: { type: "boolean", default: true },
    system: { anyOf: [{ type: "string", maxLength: 8000 }, { type: "null" }], default: null },
    fields: { type: "array", items: { $ref: "#/$defs/FieldSpec" }, maxItems: 100 },
    pii: { anyOf: [{ $ref: "#/$defs/PiiRule" }, { type: "null" }], default: null },
    stop: { type: "array", items: { type: "string" } },
    headers: { type: "object", additionalProperties: { type: "string" } },
    value: { default: null, title: "Value" },
  },
};

describe("schema to form", () => {
  const byName = Object.fromEntries(objectFields(root, root).map((f) => [f.name, f]));

  it("picks a widget for every kind of field our blocks use", () => {
    expect(Object.fromEntries(Object.entries(byName).map(([k, f]) => [k, f.kind]))).toEqual({
      template: "textarea", model: "text", max_new_tokens: "integer", top_p: "number", chat: "boolean",
      system: "textarea", fields: "object-list", pii: "object", stop: "list", headers: "map", value: "json",
    });
  });

  it("describes limits and defaults", () => {
    expect(byName.max_new_tokens).toMatchObject({ limits: "1 to 8192", default: 256, title: "Max new tokens" });
    expect(byName.top_p?.limits).toBe("more than 0, 1");
    expect(byName.template?.limits).toBe("at most 32000 characters");
  });

  it("unwraps optionals and follows $ref", () => {
    expect(byName.system).toMatchObject({ nullable: true, default: null });
    expect(byName.pii).toMatchObject({ nullable: true, title: "Pii" });
    expect(objectFields(byName.pii!.schema, root).map((f) => [f.name, f.kind])).toEqual([["entities", "enum-set"]]);
    expect(resolve({ $ref: "#/$defs/FieldSpec" }, root).required).toEqual(["name"]);
  });

  it("marks required properties and builds new items from their defaults", () => {
    const item = fieldSpec("item", { $ref: "#/$defs/FieldSpec" }, root, false);
    expect(objectFields(item.schema, root).find((f) => f.name === "name")?.required).toBe(true);
    expect(initialValue({ $ref: "#/$defs/FieldSpec" }, root)).toEqual({ name: "" });
    expect(initialValue(byName.max_new_tokens!.schema, root)).toBe(256);
  });
});

describe("fields picked from the organization's things", () => {
  // As pydantic writes the hints of knowledge.retrieve and app.call (json_schema_extra).
  const picked: JsonSchema = {
    type: "object",
    properties: {
      knowledge_base: { type: "string", minLength: 1, maxLength: 100, "x-mantle-source": "knowledge" },
      app_id: { type: "string", format: "uuid", "x-mantle-source": "apps" } as JsonSchema,
      version: { anyOf: [{ type: "integer" }, { const: "latest", type: "string" }], default: "latest",
        "x-mantle-source": "app-versions", "x-mantle-app-field": "app_id" },
      other: { type: "string", "x-mantle-source": "something-new" },
      body: { type: "array", items: { type: "string" }, minItems: 1, "x-mantle-source": "nodes" },
    },
  };
  const fields = Object.fromEntries(objectFields(picked, picked).map((f) => [f.name, f]));

  it("draws a hinted field as a picker, whatever its JSON type, and an unknown hint as before", () => {
    expect([fields.knowledge_base?.kind, fields.app_id?.kind, fields.version?.kind, fields.other?.kind, fields.body?.kind])
      .toEqual(["source", "source", "source", "text", "nodes"]);
    expect(sourceOf(fields.version!.schema)).toBe("app-versions");
    expect(fields.version!.schema["x-mantle-app-field"]).toBe("app_id");
  });

  it("says no length limits for a picked value", () => {
    expect(fields.knowledge_base?.limits).toBe("");
    expect(fields.other?.limits).toBe("");
  });
});
