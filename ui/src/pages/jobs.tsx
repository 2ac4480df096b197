/** The jobs list, and a job's page: its graph and ops (Overview) or its Launchpad. */
import { useEffect, useState } from 'preact/hooks';
import { api, type JobInfo } from '../api.js';
import { OpGraph } from '../graph.js';
import { href } from '../router.js';

/** The jobs, re-read from the server every few seconds (job files are re-read when they change). */
function useJobs(): { jobs: JobInfo[] | null; error: string | null } {
  const [jobs, setJobs] = useState<JobInfo[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    const load = () =>
      api<{ jobs: JobInfo[] }>('jobs').then(
        (r) => live && (setJobs((old) => (JSON.stringify(old) === JSON.stringify(r.jobs) ? old : r.jobs)), setError(null)),
        (e: unknown) => live && setError(String(e)),
      );
    void load();
    const timer = setInterval(() => void load(), 3000);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, []);
  return { jobs, error };
}

export function JobsPage() {
  const { jobs, error } = useJobs();
  if (error) return <p class="error">{error}</p>;
  if (!jobs) return <p class="muted">Loading jobs…</p>;
  if (jobs.length === 0) return <p>No jobs: start the UI with <code>--jobs PATH</code>.</p>;
  return (
    <section>
      <h1>Jobs</h1>
      <table>
        <thead><tr><th>Job</th><th>Ops</th><th>Description</th><th>File</th></tr></thead>
        <tbody>
          {jobs.map((j) => (
            <tr key={j.name}>
              <td><a href={href(['jobs', j.name])}>{j.name}</a>{j.problems && <span class="badge s-FAILURE"> does not load</span>}</td>
              <td>{j.ops.length}</td>
              <td>{j.description ?? ''}</td>
              <td><code>{j.file}</code></td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function JobPage({ name, tab }: { name: string; tab: string | undefined }) {
  const { jobs, error } = useJobs();
  const job = jobs?.find((j) => j.name === name);
  if (error) return <p class="error">{error}</p>;
  if (!jobs) return <p class="muted">Loading…</p>;
  if (!job) return <p class="error">No job named “{name}”.</p>;
  return (
    <section>
      <h1>{job.name}</h1>
      {job.description && <p>{job.description}</p>}
      <nav class="tabs" aria-label="Job">
        <a href={href(['jobs', name])} aria-current={tab === undefined ? 'page' : undefined}>Overview</a>
        <a href={href(['jobs', name, 'launchpad'])} aria-current={tab === 'launchpad' ? 'page' : undefined}>Launchpad</a>
        <a href={href(['runs'], new URLSearchParams({ job: name }))}>Runs</a>
      </nav>
      {job.problems ? (
        <div role="alert" class="problems-box">
          <p>The job file <code>{job.file}</code> does not load:</p>
          <ul class="problems">
            {job.problems.map((p, i) => (
              <li key={i} class="error">{p.file ?? job.file}{p.line ? `:${p.line}${p.column ? `:${p.column}` : ''}` : ''}{p.path ? ` at ${p.path}` : ''}: {p.message}</li>
            ))}
          </ul>
        </div>
      ) : tab === 'launchpad' ? (
        <LazyLaunchpad key={job.name} job={job} />
      ) : (
        <JobOverview job={job} />
      )}
    </section>
  );
}

function JobOverview({ job }: { job: JobInfo }) {
  return (
    <div class="overview">
      <OpGraph ops={job.ops} />
      <table>
        <thead><tr><th>Op</th><th>Kind</th><th>Upstream</th><th>Tags</th><th>Retry</th><th>Default config</th></tr></thead>
        <tbody>
          {job.ops.map((op) => (
            <tr key={op.name}>
              <td>{op.name}</td>
              <td>{op.kind}</td>
              <td>{op.upstream.join(', ')}</td>
              <td>{Object.entries(op.tags).map(([k, v]) => <span key={k} class="tag">{k}={v}</span>)}</td>
              <td>{op.retry ? `${op.retry.maxRetries} retries, ${op.retry.delaySeconds}s${op.retry.backoff ? ` ${op.retry.backoff}` : ''}` : ''}</td>
              <td>{Object.keys(op.config).length > 0 ? <code>{JSON.stringify(op.config)}</code> : ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

type LaunchpadComponent = typeof import('./launchpad.js').Launchpad;

/** The Launchpad (and its editor, the bulk of the code) loads only when opened. */
function LazyLaunchpad({ job }: { job: JobInfo }) {
  const [Launchpad, setLaunchpad] = useState<LaunchpadComponent | null>(null);
  useEffect(() => void import('./launchpad.js').then((m) => setLaunchpad(() => m.Launchpad)), []);
  return Launchpad ? <Launchpad job={job} /> : <p class="muted">Loading the editor…</p>;
}
