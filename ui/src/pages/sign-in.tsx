/** Sign in with a steward account (`hub users create`): the hub sets the session cookie, the CSRF token stays in memory. */
import { useState } from 'preact/hooks';
import { api, type Session } from '../api.js';
import { ErrorBox } from '../components.js';

export function SignIn({ onSignedIn }: { onSignedIn: (session: Session) => void }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<Error | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await api.signIn(username, password));
    } catch (failure) {
      setError(failure as Error);
      setPassword('');
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="sign-in">
      <form onSubmit={submit} class="card">
        <h1>customer-hub</h1>
        <p class="muted">Steward workspace</p>
        <label>
          Username
          <input name="username" autocomplete="username" value={username} onInput={(e) => setUsername(e.currentTarget.value)} required autofocus />
        </label>
        <label>
          Password
          <input name="password" type="password" autocomplete="current-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} required />
        </label>
        <ErrorBox error={error} />
        <button type="submit" class="primary" disabled={busy}>
          Sign in
        </button>
      </form>
    </main>
  );
}
