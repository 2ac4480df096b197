/** The baton UI: navigation, the token prompt, and the page for the URL's hash. */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { authToken } from './api.js';
import { JobPage, JobsPage } from './pages/jobs.js';
import { SchedulesPage, SensorsPage } from './pages/automation.js';
import { LimitsPage, WorkersPage } from './pages/fleet.js';
import { RunPage } from './pages/run.js';
import { RunsPage } from './pages/runs.js';
import { useRoute } from './router.js';
import './style.css';

function TokenPrompt({ onDone }: { onDone(): void }) {
  const [value, setValue] = useState('');
  return (
    <form class="banner" onSubmit={(e) => { e.preventDefault(); authToken.set(value.trim()); onDone(); }}>
      <label>This UI needs its access token (<code>--auth-token</code>): <input type="password" aria-label="Access token" value={value} onInput={(e) => setValue(e.currentTarget.value)} /></label>
      <button type="submit">Save</button>
    </form>
  );
}

function App() {
  const route = useRoute();
  const [needToken, setNeedToken] = useState(false);
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    const ask = () => setNeedToken(true);
    window.addEventListener('baton:auth', ask);
    return () => window.removeEventListener('baton:auth', ask);
  }, []);
  const [section = 'jobs', id, tab] = route.parts;
  let page;
  if (section === 'jobs' && id) page = <JobPage name={id} tab={tab} />;
  else if (section === 'runs' && id) page = <RunPage runId={id} />;
  else if (section === 'runs') page = <RunsPage query={route.query} />;
  else if (section === 'schedules') page = <SchedulesPage />;
  else if (section === 'sensors') page = <SensorsPage />;
  else if (section === 'limits') page = <LimitsPage />;
  else if (section === 'workers') page = <WorkersPage />;
  else page = <JobsPage />;
  const link = (name: string, to: string) => <a href={`#/${to}`} aria-current={section === to ? 'page' : undefined}>{name}</a>;
  return (
    <>
      <header>
        <span class="brand">baton</span>
        <nav aria-label="Main">{link('Jobs', 'jobs')}{link('Runs', 'runs')}{link('Schedules', 'schedules')}{link('Sensors', 'sensors')}{link('Limits', 'limits')}{link('Workers', 'workers')}</nav>
      </header>
      {needToken && <TokenPrompt onDone={() => { setNeedToken(false); setGeneration((g) => g + 1); }} />}
      <main key={generation}>{page}</main>
    </>
  );
}

render(<App />, document.getElementById('app') as HTMLElement);
