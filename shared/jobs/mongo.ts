import { randomUUID } from 'node:crypto';
import type { Collection, Db, UpdateFilter } from 'mongodb';
import type { ConvertOptions } from '../convert-options';
import type { Job, JobPosition, JobStatus, JobStore, Mp3Result, NewJob, NotificationClaim, Progress, Transition, UploadCounts } from './store';

interface JobDocument {
  _id: string;
  owner: string;
  /** Absent on documents written before it was kept. */
  ownerEmail?: string | null;
  filename: string;
  /** Absent when nothing was asked, and on documents written before options were kept. */
  options?: ConvertOptions;
  status: JobStatus;
  createdAt: Date;
  updatedAt: Date;
  mp3: Mp3Result | null;
  failure: string | null;
  /** The next four are absent on documents written before they were kept (revision 1, one transition: the status). */
  revision?: number;
  transitions?: Transition[];
  /** The token of the conversion in hand. */
  conversion?: string | null;
  progress?: Progress | null;
  /** Absent on documents written before MP3s expired. */
  expiresAt?: Date | null;
  expired?: true;
}

/** Who may convert a job right now, and until when. */
interface LeaseDocument {
  _id: string;
  until: Date;
}

/** Who is sending a job's email, or that it was sent. */
interface NotificationDocument {
  _id: string;
  state: 'sending' | 'sent';
  claimedAt: Date;
}

/**
 * Jobs in MongoDB, keyed by the video id. The right to convert and the right to send the email
 * are taken by inserting a document keyed by the job id: the unique `_id` lets exactly one of
 * several concurrent deliveries win, on MongoDB and on FerretDB alike (whose conditional
 * updates are not atomic, as MongoDB's are). One MP3 per video is enforced on the MP3s
 * themselves (see GridFSMediaStore). A change a watcher sees (a status, a progress report) is a
 * compare-and-set on the job's revision (see `change`); only the conversion holding the lease
 * makes them, so there is no second writer for FerretDB's non-atomic compare to let through.
 */
export class MongoJobStore implements JobStore {
  private ownerIndexes?: Promise<unknown>;
  private sweepIndexes?: Promise<unknown>;

  /** `connect` is called on each use, so a process starts even while MongoDB is down. */
  constructor(private readonly connect: () => Promise<Db>) {}

  async create(job: NewJob): Promise<Job> {
    const now = new Date();
    const doc: JobDocument = {
      _id: job.id,
      owner: job.owner,
      ownerEmail: job.ownerEmail ?? null,
      filename: job.filename,
      ...(job.options && { options: job.options }),
      status: 'uploaded',
      createdAt: now,
      updatedAt: now,
      mp3: null,
      failure: null,
      revision: 1,
      transitions: [{ status: 'uploaded', revision: 1, at: now }],
      conversion: null,
      progress: null,
    };
    await (await this.jobs()).insertOne(doc);
    return toJob(doc);
  }

  async get(id: string): Promise<Job | null> {
    const doc = await (await this.jobs()).findOne({ _id: id });
    return doc ? toJob(doc) : null;
  }

  async delete(id: string): Promise<void> {
    const db = await this.connect();
    await Promise.all([
      db.collection<JobDocument>('jobs').deleteOne({ _id: id }),
      db.collection<LeaseDocument>('job_leases').deleteOne({ _id: id }),
      db.collection<NotificationDocument>('job_notifications').deleteOne({ _id: id }),
    ]);
  }

  async countUploads(owner: string, since: Date): Promise<UploadCounts> {
    const jobs = await this.byOwner();
    const recent = { owner, createdAt: { $gte: since } };
    const [total, inFlight, oldest] = await Promise.all([
      jobs.countDocuments(recent),
      jobs.countDocuments({ ...recent, status: { $in: ['uploaded', 'converting'] } }),
      jobs.findOne(recent, { sort: { createdAt: 1 }, projection: { createdAt: 1 } }),
    ]);
    return { total, inFlight, oldest: oldest?.createdAt ?? null };
  }

  async listByOwner(owner: string, limit: number, after?: JobPosition): Promise<Job[]> {
    const jobs = await this.byOwner();
    const older = after && { $or: [{ createdAt: { $lt: after.createdAt } }, { createdAt: after.createdAt, _id: { $lt: after.id } }] };
    const docs = await jobs.find({ owner, ...older }, { sort: { createdAt: -1, _id: -1 }, limit }).toArray();
    return docs.map(toJob);
  }

  async startConversion(id: string, leaseMs: number): Promise<string | null> {
    const job = await this.get(id);
    if (!job || (job.status !== 'uploaded' && job.status !== 'converting')) return null;
    const leases = await this.leases();
    const now = new Date();
    const taken = await takeByInsert<LeaseDocument>(leases, { _id: id, until: new Date(now.getTime() + leaseMs) }, (held) => held.until < now, (held) => ({ _id: id, until: held.until }));
    if (!taken) return null;
    const conversion = randomUUID();
    const started = await this.change(
      id,
      (doc) => doc.status === 'uploaded' || doc.status === 'converting',
      (doc, revision) => entering(doc, 'converting', revision, { conversion, progress: null }),
    );
    if (started) return conversion;
    await leases.deleteOne({ _id: id }); // settled meanwhile by someone else
    return null;
  }

  async reportProgress(id: string, conversion: string, percent: number): Promise<void> {
    await this.change(
      id,
      (doc) => doc.status === 'converting' && doc.conversion === conversion && (doc.progress?.percent ?? -1) < percent,
      (_doc, revision) => ({ $set: { revision, progress: { percent, revision } } }),
    );
  }

  async extendConversion(id: string, leaseMs: number): Promise<void> {
    await (await this.leases()).updateOne({ _id: id }, { $set: { until: new Date(Date.now() + leaseMs) } });
  }

  async finishConversion(id: string, mp3: Mp3Result, expiresAt?: Date): Promise<void> {
    await this.settle(id, { status: 'converted', mp3, expiresAt: expiresAt ?? null });
  }

  async failConversion(id: string, reason: string): Promise<void> {
    await this.settle(id, { status: 'failed', failure: reason });
  }

  async releaseConversion(id: string): Promise<void> {
    await this.settle(id, { status: 'uploaded' });
  }

  async claimNotification(id: string, staleMs: number): Promise<NotificationClaim> {
    if (!(await this.get(id))) return 'missing';
    const notifications = await this.notifications();
    const now = new Date();
    let held: NotificationDocument | null = null;
    const taken = await takeByInsert<NotificationDocument>(
      notifications,
      { _id: id, state: 'sending', claimedAt: now },
      (doc) => {
        held = doc;
        return doc.state === 'sending' && doc.claimedAt.getTime() < now.getTime() - staleMs;
      },
      (doc) => ({ _id: id, state: 'sending' as const, claimedAt: doc.claimedAt }),
    );
    if (taken) return 'claimed';
    return (held as NotificationDocument | null)?.state === 'sent' ? 'sent' : 'busy';
  }

  async finishNotification(id: string): Promise<void> {
    await (await this.notifications()).updateOne({ _id: id }, { $set: { state: 'sent' } });
  }

  async releaseNotification(id: string): Promise<void> {
    await (await this.notifications()).deleteOne({ _id: id, state: 'sending' });
  }

  async listExpiring(now: Date, limit: number): Promise<Job[]> {
    const jobs = await this.bySweep();
    const docs = await jobs.find({ expiresAt: { $lte: now }, expired: { $exists: false }, status: 'converted' }, { sort: { expiresAt: 1 }, limit }).toArray();
    return docs.map(toJob);
  }

  async markExpired(id: string): Promise<void> {
    await (await this.jobs()).updateOne({ _id: id }, { $set: { expired: true } });
  }

  async listAbandoned(before: Date, limit: number): Promise<Job[]> {
    const jobs = await this.bySweep();
    const docs = await jobs.find({ status: 'uploaded', updatedAt: { $lt: before } }, { sort: { updatedAt: 1 }, limit }).toArray();
    return docs.map(toJob);
  }

  async close(): Promise<void> {}

  /** converting → somewhere, and only from converting; the lease and the progress go with it. */
  private async settle(id: string, change: Partial<JobDocument> & { status: JobStatus }): Promise<void> {
    const { status, ...rest } = change;
    await this.change(id, (doc) => doc.status === 'converting', (doc, revision) => entering(doc, status, revision, { ...rest, conversion: null, progress: null }));
    await (await this.leases()).deleteOne({ _id: id });
  }

  /**
   * Applies `update` (given the revision it makes) to the job as read, if `when` holds and the
   * job still has that revision and status; if not, reads it again and retries. True if applied.
   */
  private async change(
    id: string,
    when: (doc: JobDocument) => boolean,
    update: (doc: JobDocument, revision: number) => UpdateFilter<JobDocument>,
  ): Promise<boolean> {
    const jobs = await this.jobs();
    for (let attempt = 0; attempt < 20; attempt++) {
      const doc = await jobs.findOne({ _id: id });
      if (!doc || !when(doc)) return false;
      // A document written before revisions were kept has none until this update.
      const revision = doc.revision ?? { $exists: false };
      const { matchedCount } = await jobs.updateOne({ _id: id, status: doc.status, revision }, update(doc, (doc.revision ?? 1) + 1));
      if (matchedCount === 1) return true;
    }
    throw new Error(`job ${id} kept changing under this update`);
  }

  /** Made once per process, on first use: every upload counts and every list reads by owner; neither may scan the collection. */
  private async byOwner(): Promise<Collection<JobDocument>> {
    const jobs = await this.jobs();
    // One index serves the day's count and the newest-first pages (read backwards). Keep it to one
    // per createIndex: FerretDB 2 drops the connection when one createIndexes names several that
    // exist already, as they do for every process after the first.
    this.ownerIndexes ??= jobs.createIndex({ owner: 1, createdAt: 1, _id: 1 }).catch((err: unknown) => {
      this.ownerIndexes = undefined;
      throw err;
    });
    await this.ownerIndexes;
    return jobs;
  }

  /** The sweeper's indexes, made once per process on first use, one createIndex each (see byOwner). */
  private async bySweep(): Promise<Collection<JobDocument>> {
    const jobs = await this.jobs();
    this.sweepIndexes ??= (async () => {
      await jobs.createIndex({ expiresAt: 1 });
      await jobs.createIndex({ status: 1, updatedAt: 1 });
    })().catch((err: unknown) => {
      this.sweepIndexes = undefined;
      throw err;
    });
    await this.sweepIndexes;
    return jobs;
  }

  private jobs = async () => (await this.connect()).collection<JobDocument>('jobs');
  private leases = async () => (await this.connect()).collection<LeaseDocument>('job_leases');
  private notifications = async () => (await this.connect()).collection<NotificationDocument>('job_notifications');
}

/**
 * Inserts `doc`; if its `_id` is taken by a holder that `expired` says may be displaced, removes
 * exactly that holder (`match`) and tries once more. True if this call holds it now.
 */
async function takeByInsert<T extends { _id: string }>(
  collection: Collection<T>,
  doc: T,
  expired: (held: T) => boolean,
  match: (held: T) => Partial<T>,
): Promise<boolean> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await collection.insertOne(doc as never);
      return true;
    } catch (err) {
      if ((err as { code?: number }).code !== 11000) throw err;
    }
    const held = await collection.findOne({ _id: doc._id } as never);
    if (!held || !expired(held as T)) return false;
    await collection.deleteOne(match(held as T) as never);
  }
  return false;
}

/** The update that makes `doc` enter `status` as `revision`, with `fields` besides. */
function entering(doc: JobDocument, status: JobStatus, revision: number, fields: Partial<JobDocument>): UpdateFilter<JobDocument> {
  const at = new Date();
  // The whole list is set, not pushed: a document from before revisions has none to push to.
  const transitions = [...transitionsOf(doc), { status, revision, at }];
  return { $set: { ...fields, status, revision, transitions, updatedAt: at } };
}

const transitionsOf = (doc: JobDocument): Transition[] => doc.transitions ?? [{ status: doc.status, revision: doc.revision ?? 1, at: doc.updatedAt }];

function toJob(doc: JobDocument): Job {
  return {
    id: doc._id,
    owner: doc.owner,
    ...(doc.ownerEmail && { ownerEmail: doc.ownerEmail }),
    filename: doc.filename,
    ...(doc.options && { options: doc.options }),
    status: doc.status,
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
    ...(doc.mp3 && { mp3: doc.mp3 }),
    ...(doc.failure !== null && { failure: doc.failure }),
    ...(doc.expiresAt && { expiresAt: doc.expiresAt }),
    ...(doc.expired && { expired: true as const }),
    revision: doc.revision ?? 1,
    transitions: transitionsOf(doc),
    ...(doc.progress && { progress: doc.progress }),
  };
}
