// Op functions for the nightly_etl example: `async (context, inputs) => output`.
const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(new Error('aborted'));
    });
  });

export async function extractOrders(context) {
  await sleep(150, context.signal);
  const orders = Array.from({ length: 5 }, (_, i) => ({ id: i + 1, customer: (i % 3) + 1, amount: 10 * (i + 1) }));
  context.log.info({ count: orders.length, day: context.config.day }, 'extracted orders');
  return orders;
}

export async function extractCustomers(context) {
  await sleep(100, context.signal);
  context.log.info('extracted customers');
  return [1, 2, 3].map((id) => ({ id, name: `customer ${id}` }));
}

/** A flaky source: the first attempt fails, as tracking APIs at 3 a.m. do. */
export async function extractEvents(context) {
  await sleep(100, context.signal);
  if (context.attempt === 1) throw new Error('tracking API timed out (HTTP 504)');
  context.log.info({ attempt: context.attempt }, 'extracted events');
  return [{ customer: 1, clicks: 12 }, { customer: 2, clicks: 3 }];
}

export async function load(context, { rows }) {
  context.log.info({ table: context.config.table, rows: rows.length }, 'loading into redshift');
  await sleep(300, context.signal);
  return { table: context.config.table, rows: rows.length };
}

export async function revenueReport(context, { orders, customers }) {
  return { orders: orders.rows, customers: customers.rows, note: 'revenue by customer' };
}

export async function engagementReport(context, { events, customers }) {
  return { events: events.rows, customers: customers.rows };
}
