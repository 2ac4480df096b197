/** Secrets never reach a log line, an error message or a --json object. */

/** A URL with its password replaced by `***` (also for strings that do not parse as URLs). */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    // Not a URL we can parse: hide anything between "://" (or the start) and the last "@".
    return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)?[^/]*@/i, (_m, scheme: string | undefined) => `${scheme ?? ''}***@`);
  }
}

/** Credentials inside any string that looks like `scheme://user:pass@...` are hidden. */
export function redactCredentials(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/gi, '$1***@');
}
