# One rank of bench/head.bench.ts: arcface_torch's PartialFC_V2 algorithm (AllGather with an
# autograd backward that reduce-scatters and scales by the world size, sampling, normalised
# linear, CosFace CombinedMarginLoss, DistCrossEntropy) on Gloo, written out here as in
# insightface/recognition/arcface_torch/partial_fc_v2.py. Prints one JSON line.
import json, math, os, resource, sys, time
import torch
import torch.distributed as dist

o = json.loads(os.environ["BENCH_HEAD"])
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()


class AllGatherFunc(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor, *gather_list):
        gather_list = list(gather_list)
        dist.all_gather(gather_list, tensor)
        return tuple(gather_list)

    @staticmethod
    def backward(ctx, *grads):
        grad_list = list(grads)
        rank = dist.get_rank()
        grad_out = grad_list[rank]
        dist_ops = [
            dist.reduce(grad_out, rank, dist.ReduceOp.SUM, async_op=True)
            if i == rank
            else dist.reduce(grad_list[i], i, dist.ReduceOp.SUM, async_op=True)
            for i in range(dist.get_world_size())
        ]
        for _op in dist_ops:
            _op.wait()
        grad_out *= len(grad_list)
        return (grad_out, *[None for _ in range(len(grad_list))])


AllGather = AllGatherFunc.apply


class DistCrossEntropyFunc(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, label):
        batch_size = logits.size(0)
        max_logits, _ = torch.max(logits, dim=1, keepdim=True)
        dist.all_reduce(max_logits, dist.ReduceOp.MAX)
        logits.sub_(max_logits)
        logits.exp_()
        sum_logits_exp = torch.sum(logits, dim=1, keepdim=True)
        dist.all_reduce(sum_logits_exp, dist.ReduceOp.SUM)
        logits.div_(sum_logits_exp)
        index = torch.where(label != -1)[0]
        loss = torch.zeros(batch_size, 1, device=logits.device)
        loss[index] = logits[index].gather(1, label[index])
        dist.all_reduce(loss, dist.ReduceOp.SUM)
        ctx.save_for_backward(index, logits, label)
        return loss.clamp_min_(1e-30).log_().mean() * (-1)

    @staticmethod
    def backward(ctx, loss_gradient):
        (index, logits, label) = ctx.saved_tensors
        batch_size = logits.size(0)
        one_hot = torch.zeros(size=[index.size(0), logits.size(1)], device=logits.device)
        one_hot.scatter_(1, label[index], 1)
        logits[index] -= one_hot
        logits.div_(batch_size)
        return logits * loss_gradient.item(), None


def cosface(logits, labels, s=64.0, m3=0.4):
    index_positive = torch.where(labels != -1)[0]
    target_logit = logits[index_positive, labels[index_positive].view(-1)]
    final_target_logit = target_logit - m3
    logits[index_positive, labels[index_positive].view(-1)] = final_target_logit
    return logits * s


C, D, B, rate = o["classes"], o["dim"], o["batch"] // world, o["rate"]
num_local = C // world + int(rank < C % world)
class_start = C // world * rank + min(rank, C % world)
num_sample = int(rate * num_local)
weight = torch.nn.Parameter(torch.normal(0, 0.01, (num_local, D)))
opt = torch.optim.SGD([weight], lr=0.1, momentum=0.9, weight_decay=5e-4)
torch.manual_seed(rank)
emb = torch.randn(B, D, requires_grad=True)


def sample(labels, index_positive):
    with torch.no_grad():
        positive = torch.unique(labels[index_positive], sorted=True)
        if num_sample - positive.size(0) >= 0:
            perm = torch.rand(size=[num_local])
            perm[positive] = 2.0
            index = torch.topk(perm, k=num_sample)[1]
            index = index.sort()[0]
        else:
            index = positive
        labels[index_positive] = torch.searchsorted(index, labels[index_positive])
    return weight[index]


def step():
    labels = torch.randint(0, C, (B,))
    opt.zero_grad()
    emb.grad = None
    gathered_emb = [torch.zeros((B, D)) for _ in range(world)]
    gathered_lab = [torch.zeros(B, dtype=torch.long) for _ in range(world)]
    _list = AllGather(emb, *gathered_emb)
    dist.all_gather(gathered_lab, labels)
    embeddings = torch.cat(_list)
    labels = torch.cat(gathered_lab).view(-1, 1)
    index_positive = (class_start <= labels) & (labels < class_start + num_local)
    labels[~index_positive] = -1
    labels[index_positive] -= class_start
    w = sample(labels, index_positive) if rate < 1 else weight
    logits = torch.nn.functional.linear(
        torch.nn.functional.normalize(embeddings), torch.nn.functional.normalize(w)
    ).clamp(-1, 1)
    logits = cosface(logits, labels)
    loss = DistCrossEntropyFunc.apply(logits, labels)
    loss.backward()
    opt.step()


times = []
for i in range(o["steps"] + 1):
    dist.barrier()
    t0 = time.perf_counter()
    step()
    dist.barrier()
    if i > 0:
        times.append((time.perf_counter() - t0) * 1000)
times.sort()
print(json.dumps({"rank": rank, "stepMs": times[len(times) // 2], "peakMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
dist.destroy_process_group()
