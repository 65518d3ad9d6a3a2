/** Names for the API schemas the Deploy tab uses (generated types live in api/schema.d.ts). */
import type { components } from "../api/schema";

type Schemas = components["schemas"];

export type Share = Schemas["ShareRead"];
export type ShareCreate = Schemas["ShareCreate"];
export type PhoneRoute = Schemas["NumberRead"];
export type Credential = Schemas["CredentialRead"];
export type Webhook = Schemas["WebhookRead"];
export type Schedule = Schemas["ScheduleRead"];
export type Policy = Schemas["PolicyRead"];
export type AttachedPolicy = Schemas["AttachedPolicy"];
