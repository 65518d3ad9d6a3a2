/**
 * The typed client of the public REST API (same origin, cookie session).
 *
 * Every write carries the session's CSRF token; any 401 signs the page out, which shows the
 * sign-in screen. Errors come back in the API's one shape, `{"detail": [{"loc", "msg", "type"}]}`.
 */
import createClient, { type Middleware } from "openapi-fetch";
import { useSession } from "../auth/session";
import type { paths } from "./schema";

const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

/** Adds the CSRF token to writes and turns a 401 into "signed out". */
export const sessionMiddleware: Middleware = {
  onRequest({ request }) {
    const token = useSession.getState().session?.csrf_token;
    if (!SAFE.has(request.method) && token) request.headers.set("X-CSRF-Token", token);
    return request;
  },
  onResponse({ response, request }) {
    // Signing in with a bad key is a 401 that the sign-in form reports itself.
    const signingIn = request.method === "POST" && new URL(request.url).pathname === "/v1/session";
    if (response.status === 401 && !signingIn) useSession.getState().signedOut();
    return response;
  },
};

export const api = createClient<paths>({ baseUrl: window.location.origin, credentials: "same-origin" });
api.use(sessionMiddleware);

export { errorMessage } from "./errors";
