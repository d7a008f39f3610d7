/** The workspace shell: restores the session, shows the sign-in page or the navigation and the current page. */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, setSignedOutHandler, type Session } from './api.js';
import { LastDecisionBar, rememberDecision } from './components.js';
import { href, onLinkClick, useLocation } from './router.js';
import { SignIn } from './pages/sign-in.js';
import { ReviewPage } from './pages/review.js';
import { CustomerPage } from './pages/customer.js';
import { SearchPage } from './pages/search.js';
import { AuditPage } from './pages/audit.js';
import { OverviewPage } from './pages/overview.js';
import { ConnectorsPage } from './pages/connectors.js';
import './style.css';

function Page({ session }: { session: Session }) {
  const { path, search } = useLocation();
  const [, section, id] = path.split('/').map(decodeURIComponent);
  switch (section) {
    case '':
    case 'review':
      return <ReviewPage id={id} search={search} />;
    case 'customers':
      return id ? <CustomerPage id={id} /> : <SearchPage search={search} />;
    case 'audit':
      return <AuditPage search={search} />;
    case 'overview':
      return <OverviewPage />;
    case 'connectors':
      return <ConnectorsPage session={session} />;
    default:
      return (
        <p class="error">
          There is no page {path}. <a href={href('/review')}>Go to the review queue</a>.
        </p>
      );
  }
}

function App() {
  // undefined: still asking the hub whether this browser has a session.
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const { path } = useLocation();
  useEffect(() => {
    setSignedOutHandler(() => setSession(null));
    // No session (401) or no answer: the sign-in page, which reports what goes wrong next.
    api.restoreSession().then(setSession, () => setSession(null));
  }, []);
  if (session === undefined) return <p class="muted">Loading…</p>;
  if (session === null) return <SignIn onSignedIn={setSession} />;
  const section = path.split('/')[1] || 'review';
  const links: [string, string][] = [
    ['review', 'Review queue'],
    ['customers', 'Customers'],
    ['audit', 'Audit log'],
    ['overview', 'Overview'],
    ...(session.scopes.includes('admin') ? [['connectors', 'Connectors'] as [string, string]] : []),
  ];
  const signOut = () =>
    api.signOut().finally(() => {
      rememberDecision(null);
      setSession(null);
    });
  return (
    <div class="shell" onClick={(event) => onLinkClick(event as unknown as MouseEvent)}>
      <header class="top">
        <strong class="brand">customer-hub</strong>
        <nav>
          {links.map(([name, label]) => (
            <a key={name} href={href(`/${name}`)} class={section === name ? 'active' : ''}>
              {label}
            </a>
          ))}
        </nav>
        <span class="user">
          {session.user.username} <small>({session.user.role})</small>
          <button type="button" class="link" onClick={signOut}>
            Sign out
          </button>
        </span>
      </header>
      <LastDecisionBar />
      <main>
        <Page session={session} />
      </main>
    </div>
  );
}

render(<App />, document.getElementById('app')!);
