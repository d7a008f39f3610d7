/** Client-side routes under /ui/ (history API): pages change without a full reload; the hub answers index.html for them. */
import { useEffect, useState } from 'preact/hooks';

export const BASE = '/ui';

export function href(path: string): string {
  return `${BASE}${path}`;
}

export function navigate(path: string, options: { replace?: boolean } = {}): void {
  const url = href(path);
  if (options.replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  dispatchEvent(new PopStateEvent('popstate'));
}

/** The current path below /ui (e.g. `/review/pair-3`) and its query. */
export function useLocation(): { path: string; search: URLSearchParams } {
  const read = () => ({ path: location.pathname.slice(BASE.length) || '/', search: new URLSearchParams(location.search) });
  const [current, setCurrent] = useState(read);
  useEffect(() => {
    const update = () => setCurrent(read());
    addEventListener('popstate', update);
    return () => removeEventListener('popstate', update);
  }, []);
  return current;
}

/** Links inside the workspace navigate in place; modified clicks (new tab) keep the browser's behaviour. */
export function onLinkClick(event: MouseEvent): void {
  const anchor = (event.target as HTMLElement).closest('a');
  if (!anchor || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || anchor.target || anchor.hasAttribute('download')) return;
  const url = new URL(anchor.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith(`${BASE}/`)) return;
  event.preventDefault();
  navigate(url.pathname.slice(BASE.length) + url.search);
}
