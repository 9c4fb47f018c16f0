// The engine's contract with JS: errors instead of crashes, deterministic memory, async ops that
// keep the event loop alive with the caller's grad/autocast state, threads, worker_threads.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { Worker } from "node:worker_threads";
import * as T from "../../src/torch/index.ts";
import { native } from "../../src/torch/native.ts";

describe("errors are JS errors naming the op", () => {
  test("shape mismatch", () => {
    assert.throws(
      () => T.ones([2, 3]).add(T.ones([4])),
      /aten::add\.Tensor: The size of tensor a \(3\) must match/,
    );
    assert.throws(() => T.ones([2, 3]).mm(T.ones([2, 3])), /aten::mm: .*cannot be multiplied/);
    assert.throws(
      () => T.conv2d(T.ones([1, 3, 8, 8]), T.ones([4, 2, 3, 3])),
      /aten::conv2d: .*expected input\[1, 3, 8, 8\] to have 2 channels/,
    );
  });
  test("wrong dtype", () => {
    assert.throws(() => T.ones([3]).indexSelect(0, T.ones([2])), /aten::index_select: .*int32 or int64/i);
    assert.throws(() => T.crossEntropy(T.ones([2, 3]), T.ones([2])), /aten::cross_entropy_loss/);
    assert.throws(() => T.tensor([1], { dtype: "i64" }).requiresGrad_(), /floating point/);
  });
  test("disposed tensor use", () => {
    const t = T.ones([2]);
    t.dispose();
    assert.ok(t.disposed);
    assert.throws(() => t.add(1), /aten::add\.Scalar: tensor was disposed/);
    assert.throws(() => t.shape, /tensor was disposed/);
    assert.throws(() => T.ones([2]).add(t), /tensor was disposed/);
    t.dispose(); // twice is harmless
    // a handle whose slot was reused still reads as disposed, never as the new tensor
    const others = Array.from({ length: 8 }, () => T.ones([1]));
    assert.throws(() => native.shape(t.native), /tensor was disposed/);
    for (const o of others) o.dispose();
  });
  test("bad arguments from JS", () => {
    const add = T.opId("aten::add.Tensor");
    assert.throws(
      () => native.call(add, T.ones([1]).native, 3 as never),
      /argument 'other': expected a Tensor|expected a Tensor/,
    );
    assert.throws(() => native.call(add, {} as never, T.ones([1]).native), /expected a Tensor/);
    assert.throws(() => native.call(add, 5, T.ones([1]).native), /expected a Tensor/);
    assert.throws(() => native.call(add, T.ones([1]).native), /missing required argument 'other'/);
    assert.throws(
      () => native.call(add, T.ones([1]).native, T.ones([1]).native, 1, 2),
      /takes 3 arguments, got 4/,
    );
    assert.throws(() => T.zeros([2.5]), /must be an integer/);
    assert.throws(() => T.opId("aten::no_such_op"), /unknown operator aten::no_such_op/);
    assert.throws(() => native.call(999999), /unknown op id/);
    assert.throws(
      () => native.fromBuffer(new Float32Array(3), 6, [2, 2]),
      /need 16 bytes, the buffer has 12/,
    );
    assert.throws(() => native.fromBuffer(new Float32Array(3), 99, [3]), /unknown dtype code/);
    assert.throws(() => T.ones([2, 2]).item(), /item\(\) needs exactly one/);
    assert.throws(() => T.tensor([[1, 2], [3]]), /ragged/);
  });
  test("backward errors", () => {
    assert.throws(
      () => T.ones([3], { requiresGrad: true }).mul(2).backward(),
      /grad can be implicitly created only for scalar outputs/,
    );
    const x = T.ones([2], { requiresGrad: true });
    const y = x.exp().sum();
    y.backward();
    assert.throws(() => y.backward(), /backward.*second time/i);
  });
});

describe("buffers", () => {
  test("tensors copy from and into typed arrays over SharedArrayBuffers and at offsets", () => {
    const shared = new Float32Array(new SharedArrayBuffer(24));
    shared.set([1, 2, 3, 4, 5, 6]);
    assert.deepEqual(T.tensor(shared, { shape: [2, 3] }).toArray(), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(T.tensor(new Float32Array(shared.buffer, 8, 2)).toArray(), [3, 4]);
    const out = new Float32Array(new SharedArrayBuffer(8));
    T.tensor([7, 8]).copyInto(out);
    assert.deepEqual(Array.from(out), [7, 8]);
    assert.throws(() => T.tensor([1, 2, 3]).copyInto(out), /destination has 8 bytes, tensor has 12/);
  });
});

describe("memory", () => {
  test("scope frees everything made inside except what is returned", () => {
    const outer = T.ones([2]);
    let inner: T.Tensor | undefined;
    const kept = T.scope(() => {
      inner = T.ones([3]).mul(2);
      const nested = T.scope(() => ({ a: inner!.add(1), list: [inner!.sub(1)] }));
      assert.ok(!nested.a.disposed);
      return nested.list[0]!;
    });
    assert.ok(inner!.disposed);
    assert.ok(!kept.disposed);
    assert.ok(!outer.disposed);
    assert.deepEqual(kept.toArray(), [1, 1, 1]);
  });
  test("scope frees on exceptions and refuses async functions", () => {
    let made: T.Tensor | undefined;
    assert.throws(() =>
      T.scope(() => {
        made = T.ones([1]);
        throw new Error("boom");
      }),
    );
    assert.ok(made!.disposed);
    assert.throws(() => T.scope(async () => 1), /scopes are synchronous/);
  });
  test("`using` disposes a tensor at the end of its block", () => {
    let seen: T.Tensor | undefined;
    {
      using t = T.ones([2]);
      seen = t;
      assert.ok(!t.disposed);
    }
    assert.ok(seen.disposed);
  });
  test("keep() exempts a tensor from scopes", () => {
    const p = T.scope(() => T.ones([2]).keep());
    const q = T.scope(() => {
      T.ones([1]).keep();
      return 0;
    });
    assert.ok(!p.disposed);
    assert.equal(q, 0);
  });
  test("100 000 small steps keep resident memory flat", () => {
    const a = T.randn([4]);
    const b = T.randn([4]);
    const w = T.randn([4], { requiresGrad: true });
    const step = (): number =>
      T.scope(() => {
        const l = a.mul(w).add(b).square().sum();
        l.backward();
        w.grad = undefined;
        return l.item();
      });
    for (let i = 0; i < 10_000; i++) step();
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 100_000; i++) step();
    const grown = (process.memoryUsage().rss - before) / 1024 / 1024;
    assert.ok(grown < 16, `resident memory grew by ${grown.toFixed(1)} MiB over 100k steps`);
  });
  test("big tensors are released by dispose, not left to the GC", () => {
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 50; i++) {
      const t = T.ones([64, 1024, 1024]); // 256 MiB each
      t.dispose();
    }
    const grown = (process.memoryUsage().rss - before) / 1024 / 1024;
    assert.ok(grown < 300, `grew ${grown.toFixed(0)} MiB`);
  });
});

describe("async ops keep the event loop running", () => {
  const heavy = (): { x: T.Tensor; w: T.Tensor } => ({
    x: T.randn([16, 16, 56, 56]),
    w: T.randn([32, 16, 3, 3], { requiresGrad: true }),
  });

  test("timers fire during backwardAsync, and the gradient equals the synchronous one", async () => {
    const { x, w } = heavy();
    const w2 = T.randn([16, 32, 3, 3]);
    const loss = (): T.Tensor =>
      T.conv2d(T.conv2d(x, w, undefined, { padding: 1 }).relu(), w2, undefined, { padding: 1 })
        .square()
        .mean();
    loss().backward();
    const sync = w.grad!.clone();
    w.grad = undefined;
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const l = loss();
    const t0 = performance.now();
    await l.backwardAsync();
    const ms = performance.now() - t0;
    clearInterval(timer);
    assert.ok(ticks >= 1 || ms < 5, `no timer tick during a ${ms.toFixed(0)} ms backward`);
    assert.ok(w.grad!.sub(sync).abs().max().item() <= 1e-5 * sync.abs().max().item());
  });

  test("callAsync carries grad mode and autocast to the pool thread", async () => {
    const { x, w } = heavy();
    const conv = T.opId("aten::conv2d");
    const run = (): Promise<T.Tensor> =>
      native.callAsync(conv, x.native, w.native, null, 1, 1).then((r) => T.wrap(r));
    const withGrad = await run();
    assert.equal(withGrad.gradFn, "ConvolutionBackward0");
    // The state is captured when the op is queued, so the promise may outlive the block.
    let noGradP: Promise<T.Tensor> | undefined;
    T.noGrad(() => {
      noGradP = run();
    });
    assert.equal((await noGradP!).gradFn, undefined);
    let bf: Promise<T.Tensor> | undefined;
    T.autocast({}, () => {
      bf = run();
    });
    assert.equal((await bf!).dtype, "bf16");
    assert.equal((await run()).dtype, "f32");
    await assert.rejects(native.callAsync(conv, x.native, T.ones([3, 3]).native), /aten::conv2d: /);
  });
});

describe("threads", () => {
  test("setNumThreads/getNumThreads and the environment variables", () => {
    const prev = T.getNumThreads();
    T.setNumThreads(1);
    assert.equal(T.getNumThreads(), 1);
    T.setNumThreads(prev);
    assert.throws(() => T.setNumThreads(0), /at least 1/);
    assert.equal(T.threadsFromEnv({ MFR_NUM_THREADS: "3", OMP_NUM_THREADS: "2" }), 3);
    assert.equal(T.threadsFromEnv({ OMP_NUM_THREADS: "2" }), 2);
    assert.equal(T.threadsFromEnv({}), undefined);
    assert.throws(() => T.threadsFromEnv({ MFR_NUM_THREADS: "two" }), /MFR_NUM_THREADS=two/);
  });

  test("the addon loads and computes in a worker_thread", async () => {
    const worker = new Worker(new URL("./worker-boot.mjs", import.meta.url), {
      workerData: { module: new URL("./worker-fixture.ts", import.meta.url).href },
      execArgv: [],
    });
    const msg = await new Promise((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
    });
    await worker.terminate();
    assert.deepEqual(msg, [2, 4, 6]);
  });

  test("RNG state round-trips exactly", () => {
    T.manualSeed(7);
    const state = T.getRngState();
    const a = T.randn([5]).toArray();
    T.setRngState(state);
    assert.deepEqual(T.randn([5]).toArray(), a);
    T.manualSeed(7);
    assert.deepEqual(T.randn([5]).toArray(), a);
  });
});
