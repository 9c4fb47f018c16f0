// The failure board with an in-memory store: which ranks a failed collective names.
import { test } from "node:test";
import assert from "node:assert/strict";
import { type BoardStore, CollectiveError, FailureBoard } from "../../src/distributed/failure.ts";

class MemoryStore implements BoardStore {
  readonly values = new Map<string, number>();
  calls = 0;
  add(key: string, delta: number): number {
    this.calls++;
    const v = (this.values.get(key) ?? 0) + delta;
    this.values.set(key, v);
    return v;
  }
}

/** A rank's board on `store`, with a fake clock that the waits advance. */
function board(
  store: BoardStore,
  rank: number,
  worldSize: number,
): { b: FailureBoard; clock: { t: number } } {
  const clock = { t: 0 };
  const b = new FailureBoard(store, {
    rank,
    worldSize,
    timeoutMs: 10_000,
    answerMs: 3000,
    storeAt: "10.0.0.1:29500",
    now: () => clock.t,
    sleep: (ms) => (clock.t += ms),
  });
  return { b, clock };
}

const timedOut = new Error("Timed out waiting 10000ms for recv operation to complete");

test("the rank that never reports is named; ranks that failed too are listed", () => {
  const store = new MemoryStore();
  store.add("mfr/failed/2", 1);
  store.add("mfr/failed", 1);
  const { b, clock } = board(store, 0, 3);
  const e = b.explain(timedOut, "allreduce #7");
  assert.ok(e instanceof CollectiveError);
  assert.deepEqual(e.silentRanks, [1]);
  assert.equal(
    e.message,
    "rank 1 did not answer within 10 s in allreduce #7, seen from rank 0 (rank 2 failed too): " +
      "Timed out waiting 10000ms for recv operation to complete",
  );
  assert.equal(e.cause, timedOut);
  assert.ok(clock.t >= 3000, "waited the answer time for rank 1");
  // The rest of the job unwinding (another collective failing) reuses the diagnosis.
  const calls = store.calls;
  assert.equal(b.explain(new Error("barrier failed"), "barrier #8"), e);
  assert.equal(store.calls, calls);
  assert.equal(b.explain(e, "x"), e);
});

test("when every rank reports, nobody is named and nobody waits", () => {
  const store = new MemoryStore();
  for (const r of [1, 2]) {
    store.add(`mfr/failed/${r}`, 1);
    store.add("mfr/failed", 1);
  }
  const { b, clock } = board(store, 0, 3);
  const e = b.explain(timedOut, "barrier #2");
  assert.deepEqual(e.silentRanks, []);
  assert.match(e.message, /^barrier #2 failed on every rank, seen from rank 0: Timed out/);
  assert.equal(clock.t, 0);
});

test("a store that does not answer names rank 0, which serves it", () => {
  const gone: BoardStore = {
    add: () => {
      throw new Error("store.add: Socket Timeout");
    },
  };
  const e = board(gone, 1, 2).b.explain(timedOut, "allgather #3");
  assert.deepEqual(e.silentRanks, [0]);
  assert.match(
    e.message,
    /^rank 0 did not answer within 10 s in allgather #3, seen from rank 1; nor did the store it serves at 10\.0\.0\.1:29500 \(3 s\): rank 0 is stopped or unreachable: Timed out/,
  );
  // ranks report under their own key, so two boards on one store see each other
  const store = new MemoryStore();
  const r1 = board(store, 1, 2);
  r1.b.explain(timedOut, "allreduce #1");
  assert.equal(store.values.get("mfr/failed/1"), 1);
  assert.deepEqual(board(store, 0, 2).b.explain(timedOut, "allreduce #1").silentRanks, []);
});

test("a closed connection is no timeout: the message says where, not how long", () => {
  const closed = new Error("[gloo/transport/tcp/pair.cc:598] Connection closed by peer [10.0.0.2]:4242");
  const e = board(new MemoryStore(), 0, 2).b.explain(closed, "broadcast #1");
  assert.match(e.message, /^rank 1 did not answer in broadcast #1, seen from rank 0: \[gloo/);
});
