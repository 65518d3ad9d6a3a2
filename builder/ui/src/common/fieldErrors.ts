/**
 * The API's errors (`{"detail": [{"loc", "msg", "type"}]}`) split by form field: each message
 * whose `loc` names one of the form's fields (`["body", "access_code"]`, `["body", "embed_origins", 0]`)
 * goes next to that field; the rest are said once for the whole form.
 */
import { errorMessage } from "../api/errors";

export interface FormErrors {
  /** Messages by field name. */
  fields: Record<string, string>;
  /** Messages no field of the form owns. */
  form: string;
}

export const NO_ERRORS: FormErrors = { fields: {}, form: "" };

interface Detail {
  loc?: (string | number)[];
  msg?: string;
}

/** The field a `loc` names: the first name after where it lives (`body`, `query`, `path`). */
function fieldOf(loc: (string | number)[] | undefined): string | null {
  if (!loc || loc.length === 0) return null;
  const [where, name] = loc;
  if (["body", "query", "path", "header"].includes(String(where))) return name === undefined ? null : String(name);
  return String(where);
}

export function formErrors(error: unknown, fields: readonly string[], fallback = "The request failed."): FormErrors {
  const detail = (error as { detail?: unknown } | undefined)?.detail;
  if (!Array.isArray(detail)) return { fields: {}, form: errorMessage(error, fallback) };
  const found: Record<string, string> = {};
  const rest: string[] = [];
  for (const d of detail as Detail[]) {
    const field = fieldOf(d.loc);
    const msg = d.msg ?? fallback;
    if (field !== null && fields.includes(field)) found[field] = found[field] ? `${found[field]}; ${msg}` : msg;
    else rest.push(msg);
  }
  return { fields: found, form: rest.length ? rest.join("; ") : Object.keys(found).length ? "" : fallback };
}
