/** The builder's shell: the session gate, the header, and the screens routed by the URL. */
import { useEffect, useState } from "react";
import { Route, Router, Switch } from "wouter";
import { api, errorMessage } from "./api/client";
import { AppView } from "./apps/AppView";
import { AppsPage } from "./apps/AppsPage";
import { AcceptLink } from "./auth/AcceptLink";
import { Header } from "./auth/Header";
import { SignIn } from "./auth/SignIn";
import { useSession } from "./auth/session";
import { KnowledgeBaseView } from "./knowledge/KnowledgeBaseView";
import { KnowledgePage } from "./knowledge/KnowledgePage";
import { PeoplePage } from "./people/PeoplePage";

/** The pages of one-time links: they work signed in or not (accepting signs this browser in). */
const LINK_PAGES = { "/builder/invite": "invite", "/builder/reset-password": "reset" } as const;

export function App() {
  const session = useSession((s) => s.session);
  const [failure, setFailure] = useState("");

  useEffect(() => {
    api.GET("/v1/session").then(({ data, response }) => {
      if (data) useSession.getState().signedIn(data);
      else if (response.status !== 401) setFailure(`The server answered ${response.status}.`);
    }).catch((e: unknown) => setFailure(errorMessage(e, "The server could not be reached.")));
  }, []);

  const link = LINK_PAGES[window.location.pathname.replace(/\/$/, "") as keyof typeof LINK_PAGES];
  if (link) return <AcceptLink kind={link} />;
  if (failure) return <main className="notice"><p role="alert">{failure} Reload the page to try again.</p></main>;
  if (session === undefined) return <main className="notice"><p role="status">Loading…</p></main>;
  if (session === null) return <SignIn />;
  return (
    <Router base="/builder">
      <Header />
      <Switch>
        <Route path="/" component={AppsPage} />
        <Route path="/people" component={PeoplePage} />
        <Route path="/knowledge" component={KnowledgePage} />
        <Route path="/knowledge/:id">{(params) => <KnowledgeBaseView key={params.id} kbId={params.id} />}</Route>
        <Route path="/apps/:id/:tab?">{(params) => <AppView appId={params.id} tab={params.tab ?? "editor"} />}</Route>
        <Route><main className="notice"><h1>Not found</h1><p>There is no page at this address.</p></main></Route>
      </Switch>
    </Router>
  );
}
