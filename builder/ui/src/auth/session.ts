/** Who this browser is signed in as; `null` shows the sign-in screen. */
import { create } from "zustand";
import type { Session } from "../api/types";

interface SessionState {
  /** `undefined` while the first GET /v1/session is in flight. */
  session: Session | null | undefined;
  signedIn: (session: Session) => void;
  signedOut: () => void;
}

export const useSession = create<SessionState>()((set) => ({
  session: undefined,
  signedIn: (session) => set({ session }),
  signedOut: () => set({ session: null }),
}));
