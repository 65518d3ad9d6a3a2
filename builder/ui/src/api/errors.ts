/** Person-readable sentences from the API's one error shape (no browser globals: unit-testable). */

interface ErrorBody {
  detail?: string | { msg?: string; loc?: (string | number)[] }[];
}

/** A person-readable sentence from an API error body (or a network failure). */
export function errorMessage(error: unknown, fallback = "The request failed."): string {
  if (error instanceof Error) return error.message || fallback;
  const detail = (error as ErrorBody | undefined)?.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail) && detail.length > 0) {
    return detail.map((d) => d.msg ?? "").filter(Boolean).join("; ") || fallback;
  }
  return fallback;
}
