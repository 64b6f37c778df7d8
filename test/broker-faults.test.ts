/**
 * Faults on the real broker, with counts: `make dev` with EARSHOT_BROKER=rabbitmq on a RabbitMQ node
 * of this suite's own, 30 uploads in flight, and one fault per run — RabbitMQ restarted, the
 * convert dispatcher killed, convert killed mid-conversion, SendGrid failing notify's first
 * attempts. Each run ends with every accepted upload in a final state, exactly one MP3 and one
 * email for each, and every queue empty; an upload refused while the broker was away kept nothing.
 */
import { once } from 'node:events';
import { readFile, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { dataPlaneProcesses, localDefaults } from '../local/dataplane';
import { makeVideo } from './media';
import { rabbitmqNode, type RabbitmqNode } from './rabbitmq-node';
import { startRuntime, type Runtime } from './runtime';
import { startSendgridStandin } from './sendgrid-standin';
import { describeWithService } from './services';
import { tempDir } from './support';

const uploads = 30;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rabbitmqAvailable =
  ['rabbitmq-topology', 'rabbitmq-ingress', 'rabbitmq-dispatcher'].every((b) => existsSync(join(localDefaults.bin, b))) &&
  existsSync('/usr/lib/rabbitmq/bin/rabbitmq-server');

type Job = { status: string; error?: string };
type Outcome = { status: number; videoId?: string };

interface Run {
  rt: Runtime;
  data: string;
  /** Counted instead of the outbox when notify mails through the SendGrid stand-in. */
  mails?: () => string[];
}

describeWithService('RabbitMQ (tools/services.sh) and the broker data plane', rabbitmqAvailable, 'the real broker under faults', () => {
  let dir: string;
  let video: string;
  let node: RabbitmqNode;
  let current: { rt: Runtime; vhost: string } | undefined;

  beforeAll(async () => {
    dir = await tempDir();
    node = rabbitmqNode(join(dir, 'rabbitmq'), 10);
    await node.up();
    video = await makeVideo(join(dir, 'clip.mp4'), { seconds: 1 });
  });
  afterAll(async () => {
    await node.down();
    await rm(join(dir, 'rabbitmq'), { recursive: true, force: true });
  });
  afterEach(async () => {
    if (!current) return;
    const { rt, vhost } = current;
    current = undefined;
    if (rt.child.exitCode === null && rt.child.signalCode === null) {
      const exited = once(rt.child, 'exit');
      rt.child.kill('SIGTERM');
      await exited;
    }
    for (const end = Date.now() + 60_000; (await dataPlaneProcesses(vhost)).length > 0 && Date.now() < end; ) await sleep(250);
    expect(await dataPlaneProcesses(vhost)).toEqual([]);
    await node.api(`/api/vhosts/${encodeURIComponent(vhost)}`, { method: 'DELETE' }).catch(() => undefined);
  });

  async function start(name: string, env: Record<string, string> = {}): Promise<Run> {
    const data = join(dir, name);
    // The repository's manifests and delivery settings; a convert lease of 3 s, so that a
    // redelivery takes over from a killed convert soon, and upload limits above 30 in flight.
    const rt = await startRuntime(data, {
      EARSHOT_BROKER: 'rabbitmq',
      EARSHOT_RABBITMQ_URL: node.amqpUrl,
      EARSHOT_RABBITMQ_MANAGEMENT_URL: node.managementUrl,
      MAX_UPLOADS_IN_FLIGHT: '100',
      MAX_UPLOADS_PER_DAY: '1000',
      CONVERT_LEASE_SECONDS: '3',
      ...env,
    });
    current = { rt, vhost: rt.ready.vhost! };
    return { rt, data };
  }

  const job = async (rt: Runtime, id: string): Promise<Job> =>
    (await fetch(`${rt.ready.functions.download}/jobs/${id}`, { headers: { authorization: `Bearer ${rt.token}` } })).json() as Promise<Job>;

  async function upload(rt: Runtime): Promise<Outcome> {
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array(await readFile(video))]), 'clip.mp4');
    const res = await fetch(`${rt.ready.functions.upload}/upload`, { method: 'POST', body: form, headers: { authorization: `Bearer ${rt.token}` } });
    const body = (await res.json()) as { videoId?: string };
    return { status: res.status, videoId: body.videoId };
  }

  /**
   * 30 uploads, `paceMs` apart; the fault starts once the tenth is accepted. The last `afterwards`
   * wait for the fault to be over and for `recovered`.
   */
  async function uploadWith(run: Run, fault: () => Promise<void>, { paceMs = 0, afterwards = 0, recovered = async () => undefined } = {}): Promise<Outcome[]> {
    const outcomes: Promise<Outcome>[] = [];
    let injected: Promise<void> | undefined;
    for (let i = 0; i < uploads; i++) {
      if (i === uploads - afterwards) {
        await Promise.all([...outcomes, injected]);
        await recovered();
      }
      outcomes.push(upload(run.rt));
      if (i === 9) injected = Promise.all(outcomes).then(fault);
      if (paceMs) await sleep(paceMs);
    }
    const done = await Promise.all(outcomes);
    await injected;
    return done;
  }

  /** Waits for the end (jobs final, queues empty), then counts, prints and checks. */
  async function settle(fault: string, run: Run, outcomes: Outcome[]) {
    const { rt, data } = run;
    const accepted = outcomes.filter((o) => o.status === 202).map((o) => o.videoId!);
    expect(outcomes.filter((o) => o.status !== 202 && o.status !== 503), 'every upload is accepted or refused with 503').toEqual([]);

    const final = new Map<string, Job>();
    const mailsOf = async () => (run.mails ? run.mails() : readdir(rt.ready.outbox).catch(() => [] as string[]));
    const vhost = encodeURIComponent(rt.ready.vhost!);
    type Queue = { name: string; messages?: number; messages_unacknowledged?: number };
    let queues: Queue[] = [];
    let quiet = 0;
    for (const end = Date.now() + 600_000; ; await sleep(500)) {
      for (const id of accepted) {
        if (!final.has(id)) {
          const j = await job(rt, id);
          if (j.status === 'converted' || j.status === 'failed') final.set(id, j);
        }
      }
      const mails = await mailsOf();
      // A busy machine can keep the management API past its timeout: that poll counts as not quiet.
      const polled = await node.api<Queue[]>(`/api/queues/${vhost}?columns=name,messages,messages_unacknowledged`).catch(() => undefined);
      if (polled) queues = polled;
      const empty = polled !== undefined && queues.every((q) => !q.messages && !q.messages_unacknowledged);
      // The management API's counts lag a few seconds: empty for 10 s running, then counted.
      quiet = final.size === accepted.length && accepted.every((id) => mails.some((m) => m.includes(id))) && empty ? quiet + 1 : 0;
      if (quiet >= 20 || Date.now() > end) break;
    }

    const mails = await mailsOf();
    // The files store: a file per MP3 and video, named by the video's id, beside its .json metadata.
    const stored = async (bucket: string) => (await readdir(join(data, 'store', 'media', bucket)).catch(() => [] as string[])).filter((f) => !f.endsWith('.json'));
    const [mp3s, videos] = [await stored('mp3s'), await stored('videos')];
    const count = (names: string[], id: string) => names.filter((n) => n.includes(id)).length;
    const tally = {
      accepted: accepted.length,
      refused: outcomes.length - accepted.length,
      converted: [...final.values()].filter((j) => j.status === 'converted').length,
      lost: accepted.filter((id) => !final.has(id) || count(mp3s, id) === 0 || count(mails, id) === 0).length,
      duplicateMp3s: accepted.filter((id) => count(mp3s, id) > 1).length,
      duplicateEmails: accepted.filter((id) => count(mails, id) > 1).length,
      keptFromRefused: videos.length - accepted.filter((id) => videos.some((v) => v.includes(id))).length,
      leftInQueues: queues.reduce((sum, q) => sum + (q.messages ?? 0) + (q.messages_unacknowledged ?? 0), 0),
    };
    const perUpload = outcomes.map((o) => o.status).join(' ');
    console.log(
      `fault run: ${fault}: ${tally.accepted} accepted, ${tally.refused} refused (503); ${tally.converted} converted; ` +
        `${tally.lost} lost, ${tally.duplicateMp3s} duplicate MP3s, ${tally.duplicateEmails} duplicate emails, ` +
        `${tally.leftInQueues} left in queues, ${tally.keptFromRefused} kept from refused uploads\n  per upload: ${perUpload}`,
    );
    expect(tally).toMatchObject({ converted: accepted.length, lost: 0, duplicateMp3s: 0, duplicateEmails: 0, leftInQueues: 0, keptFromRefused: 0 });
    const letters = (await (await fetch(`${rt.ready.functions.deadletter}/dead-letters`, { headers: { authorization: `Bearer ${rt.token}` } })).json()) as unknown[];
    expect(letters, 'nothing was dead-lettered').toEqual([]);
    return tally;
  }

  it('RabbitMQ restarted with uploads arriving: each upload is either 202 and converted, mailed once, or 503 with nothing kept', async () => {
    const run = await start('restart');
    const ingress = run.rt.ready.broker.replace('localhost', '127.0.0.1');
    const outcomes = await uploadWith(run, async () => {
      await node.down();
      await sleep(2000);
      await node.up();
    }, {
      paceMs: 400,
      // Once the supervisor has the ingress back (an empty POST is refused with 400, not lost), uploads are accepted again.
      afterwards: 5,
      recovered: async () => {
        for (const end = Date.now() + 120_000; Date.now() < end; await sleep(250)) {
          if (await fetch(ingress, { method: 'POST' }).then((r) => r.status === 400, () => false)) return;
        }
      },
    });
    const tally = await settle('RabbitMQ restarted', run, outcomes);
    expect(tally.accepted).toBeGreaterThanOrEqual(15);
    expect(outcomes.slice(-5).map((o) => o.status)).toEqual([202, 202, 202, 202, 202]);
  }, 900_000);

  it('the convert dispatcher killed (SIGKILL) with deliveries unacknowledged: redelivered, still one MP3 and one email each', async () => {
    const run = await start('dispatcher');
    const outcomes = await uploadWith(run, async () => {
      const pid = run.rt.ready.dataPlane!['convert-on-video-uploaded-dispatcher']!;
      process.kill(pid, 'SIGKILL');
    });
    await settle('convert dispatcher SIGKILLed', run, outcomes);
    expect(run.rt.lines.some((l) => l.msg === 'data-plane process exited; restarting' && l.process === 'convert-on-video-uploaded-dispatcher')).toBe(true);
  }, 900_000);

  it('convert killed (SIGKILL) mid-conversion: its lease lapses, a retry converts, still one MP3 and one email each', async () => {
    const run = await start('convert');
    let killed = 0;
    const outcomes = await uploadWith(run, async () => {
      // The convert process that has an ffmpeg running: mid-conversion.
      for (const end = Date.now() + 120_000; Date.now() < end && killed === 0; await sleep(50)) {
        const convert = await processesOf(run.data, 'dist/convert.js');
        for (const pid of convert) {
          if ((await children(pid)).length > 0) {
            process.kill(pid, 'SIGKILL');
            killed = pid;
          }
        }
      }
    });
    expect(killed, 'a convert process was killed mid-conversion').toBeGreaterThan(0);
    await settle('convert SIGKILLed mid-conversion', run, outcomes);
  }, 900_000);

  it('SendGrid failing notify\'s first 40 sends: retried by the Trigger, exactly one email each', async () => {
    const sendgrid = await startSendgridStandin('SG.local-dev-test-key');
    sendgrid.script.push(...Array.from({ length: 40 }, () => 500));
    try {
      const run = await start('notify', { SENDGRID_API_KEY: 'SG.local-dev-test-key', MAIL_URL: sendgrid.url });
      run.mails = () => sendgrid.received.filter((m) => m.status === 202).map((m) => m.body.custom_args?.jobId ?? '');
      const outcomes = await uploadWith(run, async () => undefined);
      await settle('notify failing its first attempts', run, outcomes);
      expect(sendgrid.received.filter((m) => m.status === 500)).toHaveLength(40);
    } finally {
      await sendgrid.close();
    }
  }, 900_000);
});

/** PIDs whose command line has `script` and whose DATA_DIR is `data`: a runtime's function processes. */
async function processesOf(data: string, script: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const [cmdline, environ] = await Promise.all([`/proc/${entry}/cmdline`, `/proc/${entry}/environ`].map((p) => readFile(p, 'utf8').catch(() => '')));
    if (cmdline!.includes(script) && environ!.split('\0').includes(`DATA_DIR=${data}`)) pids.push(Number(entry));
  }
  return pids;
}

async function children(pid: number): Promise<number[]> {
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  const lists = await Promise.all(tasks.map((t) => readFile(`/proc/${pid}/task/${t}/children`, 'utf8').catch(() => '')));
  return lists.join(' ').split(/\s+/).filter(Boolean).map(Number);
}
