/**
 * The console's single page: a login form (admin token or client API key, kept in sessionStorage),
 * then a sidebar and hash-routed pages. The admin sees every page; a client key sees the dashboard,
 * its rules with their endpoints, its notifications, its silences, and its keys.
 */
import { ApiError, api, type SessionInfo, session } from "./ui/api.ts";
import { clientsPage } from "./ui/clients.ts";
import type { Context, PageRender } from "./ui/context.ts";
import { dashboardPage } from "./ui/dashboard.ts";
import { h, replace } from "./ui/dom.ts";
import { keysPage } from "./ui/keys.ts";
import { notificationPage, notificationsPage } from "./ui/notifications.ts";
import { deadLettersPage, loadPage } from "./ui/operations.ts";
import { endpointsPage, rulesPage } from "./ui/rules.ts";
import { silencesPage } from "./ui/silences.ts";
import { errorBox } from "./ui/widgets.ts";

interface PageDef {
  render: PageRender;
  title?: string;
  adminOnly?: boolean;
  /** The nav entry that is highlighted for this page. */
  nav: string;
}

const pages: Record<string, PageDef> = {
  dashboard: { render: dashboardPage, title: "Dashboard", nav: "dashboard" },
  clients: { render: clientsPage, title: "Clients", adminOnly: true, nav: "clients" },
  rules: { render: rulesPage, title: "Rules", nav: "rules" },
  endpoints: { render: endpointsPage, nav: "rules" },
  notifications: { render: notificationsPage, title: "Notifications", nav: "notifications" },
  notification: { render: notificationPage, nav: "notifications" },
  silences: { render: silencesPage, title: "Silences", nav: "silences" },
  keys: { render: keysPage, title: "Keys", nav: "keys" },
  "dead-letters": { render: deadLettersPage, title: "Dead letters", adminOnly: true, nav: "dead-letters" },
  load: { render: loadPage, title: "Load generator", adminOnly: true, nav: "load" },
};

const app = document.getElementById("app") as HTMLElement;
let cleanup: (() => void) | undefined;
/** A 401 while signed in means the credential was revoked; during sign-in the form reports it. */
let signedIn = false;

function showLogin(message?: string): void {
  signedIn = false;
  cleanup?.();
  cleanup = undefined;
  const token = h("input", {
    type: "password",
    placeholder: "admin token or client API key (ak_...)",
    autocomplete: "off",
    required: true,
    "data-testid": "login-token",
  });
  const out = h("div", null, message ? errorBox(new Error(message)) : null);
  const submit = h("button", { type: "submit", "data-testid": "login-submit" }, "Sign in");
  replace(
    app,
    h(
      "div",
      { class: "login" },
      h(
        "form",
        {
          class: "card login-card",
          onsubmit: async (event: Event) => {
            event.preventDefault();
            submit.disabled = true;
            session.set(token.value.trim());
            try {
              const info = await api<SessionInfo>("GET", "/api/v1/console/session");
              start(info);
            } catch (error) {
              session.clear();
              replace(
                out,
                errorBox(
                  error instanceof ApiError && error.status === 401
                    ? new Error("That token is not valid.")
                    : error,
                ),
              );
            } finally {
              submit.disabled = false;
            }
          },
        },
        h("div", { class: "brand" }, h("span", { class: "logo" }, "◆"), " alerting console"),
        h(
          "p",
          { class: "muted" },
          "Sign in with the admin token or a client API key. It is kept for this tab only.",
        ),
        token,
        submit,
        out,
      ),
    ),
  );
  token.focus();
}

function start(info: SessionInfo): void {
  signedIn = true;
  const main = h("main", { class: "content" });
  const nav = h("nav", { class: "nav" });
  const visible = Object.entries(pages).filter(([, p]) => p.title && (!p.adminOnly || info.kind === "admin"));
  const ctx: Context = {
    session: info,
    go: (hash) => {
      if (location.hash === hash) route();
      else location.hash = hash;
    },
  };
  const route = () => {
    cleanup?.();
    cleanup = undefined;
    const [path = ""] = location.hash.replace(/^#/, "").split("?");
    const [name = "dashboard", ...rest] = path.split("/");
    const page =
      pages[name] && (!pages[name].adminOnly || info.kind === "admin") ? pages[name] : pages.dashboard;
    for (const link of nav.querySelectorAll("a")) {
      link.classList.toggle("active", link.dataset.page === (page as PageDef).nav);
    }
    main.scrollTop = 0;
    cleanup = (page as PageDef).render(ctx, main, rest) ?? undefined;
  };
  replace(
    nav,
    h("div", { class: "brand" }, h("span", { class: "logo" }, "◆"), " alerting"),
    visible.map(([key, p]) =>
      h("a", { href: `#${key}`, "data-page": key, "data-testid": `nav-${key}` }, p.title),
    ),
    h("span", { class: "spacer" }),
    h(
      "div",
      { class: "who", "data-testid": "who" },
      info.kind === "admin" ? "admin" : `client ${info.client_name ?? info.client_id}`,
    ),
    h(
      "button",
      {
        class: "secondary small",
        "data-testid": "logout",
        onclick: () => {
          session.clear();
          showLogin();
        },
      },
      "Sign out",
    ),
  );
  replace(app, h("div", { class: "shell" }, nav, main));
  window.onhashchange = route;
  route();
}

session.onUnauthorized(() => {
  if (!signedIn) return;
  session.clear();
  window.onhashchange = null;
  showLogin("The session is no longer valid: sign in again.");
});

if (session.token()) {
  api<SessionInfo>("GET", "/api/v1/console/session").then(start, () => showLogin());
} else {
  showLogin();
}
