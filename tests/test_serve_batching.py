"""Continuous batching of text completions: the row-exact decoding step, the batch decoder, and
`genlab serve` answering concurrent completions with exactly the texts the same requests get alone."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
import types

import httpx
import pytest
import torch
from fastapi.testclient import TestClient

from genlab.cli import serve_command
from genlab.cli.app import main
from genlab.data.text import CharCodec, string_array
from genlab.errors import ConfigError, NotSupportedError
from genlab.models.transformer.gpt import GPT
from genlab.nn.attention import DECODE_ALIGN, read_mask, round_up
from genlab.sampling.batch_decoding import BatchDecoder
from genlab.sampling.decoding import GenerationConfig, stream
from genlab.sampling.race import NoiseAhead, race
from genlab.sampling.row_exact import RowExactStep
from genlab.sampling.text_pieces import TextPieces
from genlab.serve import ModelRegistry, ServeSettings, create_app
from genlab.serve.completions import CompletionJob, _chunk, _event
from genlab.serve.continuous import Completion, Event, ModelLoop
from serve_support import ThreadServer, build_code_run

ALPHABET = "abcdefghijklmnopqrstuvwxyz ():\n"
EOS = len(ALPHABET)


def detokenize(ids: list[int]) -> str:
    return "".join(ALPHABET[i] for i in ids if i < EOS)


def network(n_layer: int, n_head: int, n_embd: int, block_size: int, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(EOS + 1, block_size, n_layer, n_head, n_embd).eval()


# ---------------------------------------------------------------------------------- the decoding step
@pytest.mark.parametrize("shape", [(1, 2, 16, 32), (2, 4, 20, 24), (2, 2, 64, 64), (2, 3, 36, 80)])
def test_row_exact_step_gives_each_row_its_logits_alone(shape):
    # 16 wide: the attention projection (256 multiply-adds) runs row by row; 20 wide: so does the GELU
    # (80 values, not whole vectors); 64 wide: every op batched; 36 wide, 3 heads of 12: rows of the
    # batched query not 64-byte aligned. Lengths span 1 to 4 blocks of 16, and slot 1 sits idle.
    net = network(*shape)
    step = RowExactStep(net, max_rows=8)
    generator = torch.Generator().manual_seed(1)
    lengths = [1, 9, 3, 17, 5, 2, 12, 7] if shape[3] < 64 else [1, 40, 3, 63, 16, 2, 31, 7]
    cache = step.new_cache()
    slots = [cache.acquire() for _ in range(9)]
    cache.release(slots.pop(1))
    alone_caches = []
    for slot, length in zip(slots, lengths):
        prompt = torch.randint(EOS, (1, length), generator=generator)
        net(prompt, cache=cache.row(slot))
        alone = net.new_cache(1, shape[3], align=DECODE_ALIGN)   # what decoding alone uses
        net(prompt, cache=alone)
        alone.advance(length)
        alone_caches.append(alone)
    tokens = torch.randint(EOS, (8,), generator=generator)
    positions = torch.tensor(lengths)
    with torch.inference_mode():
        batched = step(tokens, positions, cache, slots, lengths)
        alone = torch.cat([net(tokens[i].view(1, 1), cache=alone_caches[i], positions=positions[i].view(1, 1))[:, -1]
                           for i in range(8)])
    assert torch.equal(batched, alone)   # bit for bit, not approximately
    for slot, length, reference in zip(slots, lengths, alone_caches):   # and the same keys and values written
        assert all(torch.equal(a[slot:slot + 1, :, :length + 1], b[:, :, :length + 1])
                   for a, b in zip(cache.keys + cache.values, reference.keys + reference.values))


def test_a_decoding_step_reads_whole_masked_blocks():
    net = network(2, 3, 36, 80)
    generator = torch.Generator().manual_seed(3)
    prompt, token = torch.randint(EOS, (1, 21), generator=generator), torch.tensor([[4]])
    with torch.inference_mode():
        cache = net.new_cache(1, 70, align=DECODE_ALIGN)
        assert cache.capacity == 80 and not any(bool(k.any()) for k in cache.keys)   # whole blocks, zeroed
        assert cache.read_length(21) == 21   # the prompt: exactly its positions
        net(prompt, cache=cache)
        cache.advance(21)
        assert cache.read_length(1) == 32   # then whole blocks
        assert read_mask(cache, 1, None).tolist() == [[[[True] * 22 + [False] * 10]]]
        cached = net(token, cache=cache)[:, -1]
        uncached = net(torch.cat([prompt, token], dim=1))[:, -1]
    torch.testing.assert_close(cached, uncached, rtol=1e-5, atol=1e-5)   # the same maths, other roundings


def test_attention_of_a_row_is_the_same_bits_beside_other_rows_and_over_more_masked_blocks():
    # the kernel property the batched step stands on (RowExactStep.check verifies it for a network)
    generator = torch.Generator().manual_seed(0)
    for heads, size, length in [(2, 32, 5), (3, 12, 17), (6, 64, 40), (4, 16, 100)]:
        q = torch.randn(1, heads, 1, size, generator=generator)
        k, v = (torch.randn(1, heads, length, size, generator=generator) for _ in range(2))
        outputs = []
        for read in {round_up(length, 16), round_up(length, 16) + 16, 128}:
            keys, values = (torch.randn(5, heads, read, size, generator=generator) for _ in range(2))
            keys[2, :, :length], values[2, :, :length] = k[0], v[0]
            queries = torch.randn(5, heads, 1, size, generator=generator)
            queries[2] = q[0]
            mask = torch.arange(read)[None, None, None] < torch.tensor([3, 9, length, 1, read])[:, None, None, None]
            outputs.append(torch.nn.functional.scaled_dot_product_attention(queries, keys, values,
                                                                            attn_mask=mask)[2])
        assert all(torch.equal(outputs[0], other) for other in outputs[1:]), (heads, size, length)


def test_one_thread_does_attention_for_every_row_in_one_call():
    # torch 2.13's CPU kernel gives a row the same bits in any batch at one thread (the benchmarks' setting);
    # with more threads it splits a small batch's keys among them, the probe sees the lone row differ, and
    # attention runs row by row (still exact: the other tests pass at any thread count)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert all(RowExactStep(network(*shape), max_rows=8).batched_attention
                   for shape in [(1, 2, 16, 32), (2, 3, 36, 80), (2, 2, 64, 64)])
    finally:
        torch.set_num_threads(threads)


def test_row_exact_step_reprobes_when_the_thread_count_changes():
    net, threads = network(1, 2, 64, 32), torch.get_num_threads()
    step = RowExactStep(net, max_rows=4)
    assert step.threads == threads
    torch.set_num_threads(1 if threads > 1 else 2)
    try:
        cache = step.new_cache()
        slot = cache.acquire()
        net(torch.tensor([[1, 2]]), cache=cache.row(slot))
        step(torch.tensor([3]), torch.tensor([2]), cache, [slot], [2])
        assert step.threads == torch.get_num_threads()
    finally:
        torch.set_num_threads(threads)


def test_windows_of_one_length_encode_together_as_each_alone():
    net = network(2, 2, 64, 64)
    step = RowExactStep(net, max_rows=8)
    generator = torch.Generator().manual_seed(5)
    windows = torch.randint(EOS, (3, 20), generator=generator)
    cache = step.new_cache()
    slots = [cache.acquire() for _ in range(6)][3:][::-1]   # rows out of order, not from slot 0
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert step.encodes_together(3, 20)   # 20 positions x 256 GELU values: whole chunks
        together = step.encode(windows, cache, slots)                                   # (3, V)
        for row, slot in enumerate(slots):
            alone_cache = step.new_cache()
            alone = net(windows[row:row + 1], cache=alone_cache.row(0), positions=torch.arange(20)[None])[:, -1]
            assert torch.equal(together[row:row + 1], alone)   # bit for bit
            assert all(torch.equal(a[slot:slot + 1, :, :20], b[:1, :, :20])
                       for a, b in zip(cache.keys + cache.values, alone_cache.keys + alone_cache.values))
        torch.set_num_threads(2)   # kernels may split a range by the thread count: each window alone
        assert not step.encodes_together(3, 20) and step.encodes_together(1, 20)
    finally:
        torch.set_num_threads(threads)
    odd = RowExactStep(network(2, 4, 20, 24), max_rows=4)   # 80-wide GELU: 3 positions are not whole chunks
    assert not odd.encodes_together(2, 3)


def test_slot_cache_grows_and_hands_out_the_lowest_free_slot():
    cache = RowExactStep(network(1, 2, 16, 20), max_rows=4).new_cache()
    assert cache.keys[0].shape == (1, 2, 32, 8)   # the context rounded up to whole blocks of 16
    taken = [cache.acquire() for _ in range(3)]
    assert taken == [0, 1, 2] and cache.rows == 4
    cache.keys[0][1].fill_(7.0)
    cache.release(1)
    assert cache.acquire() == 1 and cache.acquire() == 3
    assert cache.acquire() == 4 and cache.rows == 8 and bool((cache.keys[0][1] == 7).all())   # rows kept


def test_networks_that_cannot_be_row_exact_are_refused():
    with pytest.raises(NotSupportedError, match="training mode"):
        RowExactStep(network(1, 2, 16, 32).train(), max_rows=4)
    with pytest.raises(NotSupportedError, match="layout"):
        RowExactStep(torch.nn.Linear(4, 4).eval(), max_rows=4)


# ---------------------------------------------------------------------------------- the batch decoder
def test_the_exponential_race_draws_what_torch_multinomial_draws():
    # choose() and the batch decoder draw by race(); the lone call's tokens before it came from multinomial
    for vocab in (7, 100, 5000):
        probs = (3 * torch.randn(4, vocab, generator=torch.Generator().manual_seed(vocab))).softmax(-1)
        one, other = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
        for _ in range(5):
            assert torch.equal(race(probs, one), torch.multinomial(probs, 1, generator=other)[:, 0])
        own = [torch.Generator().manual_seed(10 + row) for row in range(4)]
        alone = [torch.multinomial(probs[row:row + 1], 1, generator=torch.Generator().manual_seed(10 + row))[0]
                 for row in range(4)]
        assert torch.equal(race(probs, own), torch.cat(alone))   # a generator per row, as in a batch


def test_noise_drawn_ahead_is_the_noise_each_row_draws_a_token_at_a_time():
    # the batch decoder's race noise: a block of rows per slot every few tokens, staggered by slot, equal to
    # the (1, V) draw a lone race makes at each token; a row without a generator draws from the default one
    vocab, depth = 50, 4
    noise = NoiseAhead(vocab, depth, device=torch.device("cpu"), dtype=torch.float32)
    assert noise.exact()
    slots = [0, 3, 6]
    ahead = [torch.Generator().manual_seed(20 + slot) for slot in slots]
    alone = [torch.Generator().manual_seed(20 + slot) for slot in slots]
    left = [-1] * len(slots)
    for _ in range(11):
        rows = noise.rows(slots, left, ahead)                                           # (3, V)
        for row, generator in enumerate(alone):
            assert torch.equal(rows[row], torch.empty(1, vocab).exponential_(1, generator=generator)[0])
    torch.manual_seed(5)
    drawn = noise.rows([1], [-1], [None])[0]
    torch.manual_seed(5)
    assert torch.equal(drawn, torch.empty(1, vocab).exponential_(1)[0])


def test_text_pieces_hold_back_split_characters_and_stop_prefixes():
    def utf8(ids: list[int]) -> str:   # a byte-level tokenizer: "é" is two tokens
        return bytes(ids).decode("utf-8", errors="replace")

    pieces = TextPieces(utf8, ("cut",))
    made = [pieces.add(byte) for byte in "caé cu".encode()]
    assert made == ["", "ca", "", "é", " ", "", ""]   # "é" waits for its second byte; "c", "cu" may start "cut"
    assert pieces.add(ord("p")) == "cup" and not pieces.stopped
    assert [pieces.add(byte) for byte in b" cut"] == [" ", "", "", ""] and pieces.stopped
    rest = TextPieces(utf8, ("cut",))
    assert [rest.add(byte) for byte in b"a c"] == ["a", " ", ""] and rest.flush() == "c"


def test_text_pieces_of_an_additive_detokenizer_are_the_pieces_rebuilt_from_every_id():
    codec = CharCodec(context=8).fit(string_array(["caé cut\nzz q)"]))
    assert codec.detokenize.additive   # a character a token
    rng = random.Random(2)
    for stop in [(), ("cut",), ("e", "zz"), ("q)",)]:
        ids = [rng.randrange(len(codec.chars)) for _ in range(60)]
        grown, rebuilt = TextPieces(codec.detokenize, stop), TextPieces(lambda i: codec.detokenize(i), stop)
        assert grown.additive and not rebuilt.additive
        for token in ids:
            assert grown.add(token) == rebuilt.add(token)
            if rebuilt.stopped:
                break
        assert grown.stopped == rebuilt.stopped and grown.flush() == rebuilt.flush()


def random_requests(rng: random.Random, count: int) -> list[tuple[list[int], GenerationConfig, int, int]]:
    """(prompt, config, seed, step it joins at): greedy and sampled, every option, windows that slide."""
    requests = []
    for index in range(count):
        config = GenerationConfig(max_new_tokens=rng.choice([1, 5, 30, 80]), temperature=rng.choice([0.0, 0.7, 1.5]),
                                  top_k=rng.choice([None, 3]), top_p=rng.choice([None, 0.9]),
                                  repetition_penalty=rng.choice([1.0, 1.3]),
                                  stop=tuple(rng.sample(["ab", "e", "q)", "zz"], rng.randint(0, 2))))
        prompt = [EOS] + [rng.randrange(EOS) for _ in range(rng.choice([0, 3, 40]))]   # 40: longer than the context
        requests.append((prompt, config, 1000 + index, rng.randint(0, 25)))
    return requests


@pytest.mark.parametrize("shape", [(1, 2, 16, 32), (2, 4, 20, 24), (2, 2, 64, 72)])
def test_batch_decoder_sends_what_each_sequence_streams_alone(shape):
    net = network(*shape)
    decoder = BatchDecoder(net, eos=EOS, detokenize=detokenize, max_sequences=6)   # some wait for a place
    requests = random_requests(random.Random(shape[2]), 16)
    pieces: dict[int, list[str]] = {}
    step = 0
    while step <= 25 or decoder.running or decoder.waiting:
        for index, (prompt, config, seed, joins) in enumerate(requests):
            if joins == step:   # joining a batch already under way
                decoder.add(prompt, config, generator=torch.Generator().manual_seed(seed), tag=index)
                pieces[index] = []
        for update in decoder.step():
            pieces[update.sequence.tag].extend(update.pieces)
        step += 1
    assert max(decoder.batch_sizes) == 6
    for index, (prompt, config, seed, _) in enumerate(requests):
        alone = list(stream(net, prompt, config, detokenize, generator=torch.Generator().manual_seed(seed), eos=EOS))
        assert pieces[index] == alone, (index, config)   # piece for piece


def test_sequences_whose_windows_slide_together_encode_together_and_send_what_they_stream_alone():
    # 12 prompts of one length joining at once: every 32 tokens their caches fill together and their last
    # half-contexts are encoded in one call of the network; greedy, sampled and processed rows alike
    net = network(2, 2, 64, 64)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        decoder = BatchDecoder(net, eos=EOS, detokenize=detokenize, max_sequences=12)
        rng = random.Random(7)
        requests = [([EOS] + [rng.randrange(EOS) for _ in range(5)],
                     GenerationConfig(max_new_tokens=100, temperature=[0.0, 0.8, 1.2][index % 3],
                                      top_k=3 if index % 4 == 3 else None), 300 + index) for index in range(12)]
        pieces: dict[int, list[str]] = {index: [] for index in range(12)}
        for index, (prompt, config, seed) in enumerate(requests):
            decoder.add(prompt, config, generator=torch.Generator().manual_seed(seed), tag=index)
        while decoder.running or decoder.waiting:
            for update in decoder.step():
                pieces[update.sequence.tag].extend(update.pieces)
        # the prompts at once, then the windows of those still running (some drew eos) at once: where encoding
        # them together is bit-identical with this machine's kernels (probed per shape), else one at a time
        together = decoder.row_step.encodes_together
        prompts = 1 if together(12, 6) else 12
        assert decoder.encode_sizes[:prompts] == [12 // prompts] * prompts
        windows = decoder.encode_sizes[prompts:]
        assert windows and all((size > 1) == together(2, 32) for size in windows)
        for index, (prompt, config, seed) in enumerate(requests):
            alone = list(stream(net, prompt, config, detokenize, generator=torch.Generator().manual_seed(seed),
                                eos=EOS))
            assert pieces[index] == alone, index
    finally:
        torch.set_num_threads(threads)


def test_a_reader_behind_the_decoding_thread_gets_every_step_so_far_at_once():
    async def read() -> list:
        completion = Completion([], asyncio.get_running_loop())
        first, second, third = ([Event(0, (text,), False)] for text in "abc")
        for item in (first, second, RuntimeError("the model failed"), third):
            completion._put(item)
        got = [await completion.next(1.0)]   # both steps, in order, then the error once they are handled
        with pytest.raises(RuntimeError, match="the model failed"):
            await completion.next(1.0)
        return got

    assert asyncio.run(read()) == [[Event(0, ("a",), False), Event(0, ("b",), False)]]


def test_a_step_wakes_an_event_loop_only_when_no_wake_up_is_pending_there():
    async def read() -> tuple[list, int]:
        loop = asyncio.get_running_loop()
        model_loop, completion, wake_ups = ModelLoop(None, None, None), Completion([], loop), []
        schedule = loop.call_soon_threadsafe
        loop.call_soon_threadsafe = lambda *args: (wake_ups.append(args), schedule(*args))[1]
        for text in "abc":   # three steps before the loop runs: one wake-up takes them all
            model_loop._post(loop, [(completion, [Event(0, (text,), False)])])
        events = await completion.next(1.0)
        model_loop._post(loop, [(completion, [Event(0, ("d",), True)])])   # the flush ran: wake it again
        return events + await completion.next(1.0), len(wake_ups)

    events, wake_ups = asyncio.run(read())
    assert [event.pieces for event in events] == [("a",), ("b",), ("c",), ("d",)] and wake_ups == 2


def stepped_loop(streams: int, fail_at: int | None = None) -> tuple[list[Completion], list[list[list[Event]]]]:
    """A decoding loop stepped by hand over ``streams`` one-choice requests of 12 tokens that all run to their
    budget (every id has a character, the end token is none of them); what each step handed each request.
    With ``fail_at``, that step's network call raises."""
    decoder = BatchDecoder(network(1, 2, 16, 32), eos=-1, detokenize=lambda ids: "".join(chr(97 + i) for i in ids),
                           max_sequences=streams)
    if fail_at is not None:
        steps, step = [0], decoder.step

        def failing() -> list:
            steps[0] += 1
            if steps[0] == fail_at:
                raise RuntimeError("the model failed")
            return step()

        decoder.step = failing
    model_loop = ModelLoop(types.SimpleNamespace(lock=threading.Lock(), name="code"), decoder, None)
    writes: list[list[list[Event]]] = []
    model_loop._post = lambda loop, deliveries: writes[-1].extend(deliveries)
    config, loop = GenerationConfig(max_new_tokens=12, temperature=0), asyncio.new_event_loop()
    completions = [Completion([([EOS, i], config, torch.Generator().manual_seed(i))], loop) for i in range(streams)]
    model_loop._adding = list(completions)
    model_loop._admit()
    while model_loop.live:
        writes.append([])
        model_loop._step()
    return completions, [[next((events for c, events in step if c is completion), []) for step in writes]
                         for completion in completions]


@pytest.mark.parametrize("streams, interval", [(2, 1), (8, 4)])
def test_with_many_streams_live_each_is_written_every_few_tokens(streams, interval):
    # STREAMS_PER_STEP = 2: 2 streams get every token as it is made, 8 get theirs every 4 steps
    completions, handed = stepped_loop(streams)
    completions[0].loop.close()
    for steps in handed:
        sizes = [len(events) for events in steps]
        due = [1, *[interval] * (11 // interval), *([11 % interval] if 11 % interval else [])]
        assert [size for size in sizes if size] == due   # the first token at once, the last with the end
        assert [index for index, size in enumerate(sizes) if size][0] == 0
        events = [event for events in steps for event in events]
        assert len(events) == 12 and [event.done for event in events] == [False] * 11 + [True]


def test_events_held_back_reach_the_reader_before_the_failure_of_the_model():
    completions, handed = stepped_loop(8, fail_at=4)   # held: steps 2 and 3's events
    assert [len(events) for events in handed[0]] == [1, 0, 0, 0]
    loop = completions[0].loop
    held = loop.run_until_complete(completions[0].next(1.0))
    assert len(held) == 2 and all(event.pieces and not event.done for event in held)
    with pytest.raises(RuntimeError, match="the model failed"):
        loop.run_until_complete(completions[0].next(1.0))
    loop.close()


@pytest.mark.parametrize("header", [{"id": "cmpl-1", "object": "text_completion", "created": 17, "model": "cöde"}, {}])
def test_a_streamed_chunk_is_the_json_of_its_event(header):
    job = CompletionJob(["p"], [[1]], 0, {}, GenerationConfig(), header, 1.0)
    for text in ["x", "", 'a "q" \\ \n\t é ☃ \U0001f600', "\x00"]:
        for finish in [None, "stop", "length"]:
            chunk = _chunk(job, 3, text, finish)   # the header encoded once, the rest per token
            assert chunk == _event({**header, "choices": [{"index": 3, "text": text, "logprobs": None,
                                                           "finish_reason": finish}]})


def test_cancel_frees_the_place_and_the_cache_at_the_next_step():
    decoder = BatchDecoder(network(1, 2, 16, 32), eos=EOS, detokenize=detokenize, max_sequences=2)
    config = GenerationConfig(max_new_tokens=20, temperature=0)
    first, second, third = (decoder.add([EOS, i], config) for i in range(3))
    decoder.step()
    assert (decoder.running, decoder.waiting) == (2, 1) and first.slot == 0
    decoder.cancel(first)
    assert first.slot is None and first.finish == "cancelled"   # its slot is free at once
    updates = decoder.step()
    assert [u.sequence for u in updates] == [second, third] and decoder.running == 2 and decoder.waiting == 0
    assert first.drawn == 1 and third.slot == 0   # the newcomer took the freed slot


def test_the_decoder_takes_greedy_and_sampled_decoding_only():
    decoder = BatchDecoder(network(1, 2, 16, 32), eos=EOS, detokenize=detokenize)
    with pytest.raises(ConfigError, match="beam search"):
        decoder.add([EOS], GenerationConfig(num_beams=2))
    with pytest.raises(ConfigError, match="beam search"):
        decoder.add([EOS], GenerationConfig(logits_processors=(lambda tokens, scores: scores,)))
    with pytest.raises(ConfigError, match="start token"):
        decoder.add([], GenerationConfig())


# ---------------------------------------------------------------------------------- genlab serve
#: Completions of every kind: greedy and sampled, several max_tokens, stop strings, n and prompt lists,
#: a continuation past the context (block 32), a repetition penalty.
REQUESTS = [
    {"prompt": "def ", "max_tokens": 12, "temperature": 0, "seed": 1},
    {"prompt": "def f1", "max_tokens": 30, "temperature": 0.8, "seed": 2},
    {"prompt": "", "max_tokens": 64, "top_k": 5, "seed": 3},
    {"prompt": "def f2(x):\n", "max_tokens": 20, "temperature": 0.7, "top_p": 0.9, "seed": 4, "stop": ["\n\n"]},
    {"prompt": "def ", "max_tokens": 40, "temperature": 1.2, "repetition_penalty": 1.3, "seed": 5, "n": 2},
    {"prompt": ["def f3", "def f4"], "max_tokens": 16, "temperature": 0.9, "seed": 6, "stop": "x"},
    {"prompt": "def f5(x):", "max_tokens": 48, "temperature": 0, "repetition_penalty": 1.2, "seed": 7,
     "stop": [")", "*"]},
    {"prompt": "def ", "max_tokens": 1, "seed": 8},
]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    return ModelRegistry.from_runs([build_code_run(tmp_path_factory.mktemp("batching-runs"))])


@pytest.fixture(scope="module")
def server(registry):
    live = ThreadServer(registry, ServeSettings(max_tokens=64, max_concurrent=64)).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def one_at_a_time(registry):
    live = ThreadServer(registry, ServeSettings(max_tokens=64, continuous_batching=False)).start()
    yield live
    live.stop()


def decode_loop(app):
    """The code model's decoding loop inside an app (the Guard wraps the FastAPI app)."""
    return app.app.state.continuous._loops.get("code")


@pytest.fixture
def slow_steps(monkeypatch):
    """Make every batched step last at least ``seconds`` (set the returned list's first item)."""
    seconds, step = [0.0], BatchDecoder.step

    def slow(self):
        time.sleep(seconds[0])
        return step(self)

    monkeypatch.setattr(BatchDecoder, "step", slow)
    return seconds


async def ask(client: httpx.AsyncClient, url: str, request: dict, *, stream: bool,
              started: asyncio.Event | None = None) -> dict:
    """One completion, read whole: the JSON answer, or the choices' texts and finish reasons from a stream
    (``started`` is set at its first event)."""
    body = {"model": "code", **request, "stream": stream}
    if not stream:
        response = await client.post(f"{url}/v1/completions", json=body)
        answer = response.json()
        if response.status_code != 200:
            return {"status": response.status_code, "error": answer["error"]}
        return {"status": 200, "texts": [c["text"] for c in answer["choices"]],
                "finish": [c["finish_reason"] for c in answer["choices"]], "usage": answer["usage"]}
    texts: dict[int, str] = {}
    finish: dict[int, str] = {}
    async with client.stream("POST", f"{url}/v1/completions", json=body) as response:
        if response.status_code != 200:
            return {"status": response.status_code, "error": json.loads(await response.aread())["error"]}
        lines = []
        async for line in response.aiter_lines():
            if line:
                lines.append(line)
                if started is not None:
                    started.set()
    assert lines[-1] == "data: [DONE]", lines[-3:]
    order = []
    for line in lines[:-1]:
        event = json.loads(line[6:])
        assert "error" not in event, event
        choice = event["choices"][0]
        order.append(choice["index"])
        texts[choice["index"]] = texts.get(choice["index"], "") + choice["text"]
        if choice["finish_reason"]:
            finish[choice["index"]] = choice["finish_reason"]
    assert order == sorted(order)   # choice by choice, as one at a time sends them
    return {"status": 200, "texts": [texts.get(i, "") for i in range(len(finish))],
            "finish": [finish[i] for i in range(len(finish))]}


def answers(url: str, requests: list[dict], *, together: bool) -> list[dict]:
    """Every request streamed and not: all at once, or one after another."""
    async def run() -> list[dict]:
        async with httpx.AsyncClient(timeout=60) as client:
            calls = [(request, streamed) for request in requests for streamed in (False, True)]
            if together:
                return list(await asyncio.gather(*(ask(client, url, r, stream=s) for r, s in calls)))
            return [await ask(client, url, r, stream=s) for r, s in calls]

    return asyncio.run(run())


def seed_texts(model, request: dict) -> list[str]:
    """Choice i of ``request`` as ``model.stream`` draws it alone from seed + i."""
    prompts = [request["prompt"]] if isinstance(request["prompt"], str) else request["prompt"]
    options = {"max_new_tokens": request["max_tokens"], "temperature": request.get("temperature", 1.0),
               "top_k": request.get("top_k"), "top_p": request.get("top_p"),
               "repetition_penalty": request.get("repetition_penalty", 1.0),
               "stop": [request["stop"]] if isinstance(request.get("stop"), str) else request.get("stop", [])}
    repeated = [prompt for prompt in prompts for _ in range(request.get("n", 1))]
    seed = request.get("seed", 0)
    return ["".join(model.stream(prompt, generator=torch.Generator().manual_seed(seed + i), **options))
            for i, prompt in enumerate(repeated)]


def test_concurrent_completions_equal_the_same_requests_served_one_at_a_time(server, one_at_a_time, registry,
                                                                             slow_steps):
    slow_steps[0] = 0.005   # every request arrives while others decode
    together = answers(server.url, REQUESTS, together=True)
    loop = decode_loop(server.app)
    assert loop is not None and max(loop.decoder.batch_sizes) > 4   # the tiny model did decode in batches
    alone = answers(server.url, REQUESTS, together=False)
    unbatched = answers(one_at_a_time.url, REQUESTS, together=False)
    assert decode_loop(one_at_a_time.app) is None
    assert together == alone == unbatched
    model = registry.get("code").model
    for request, plain, streamed in zip(REQUESTS, together[::2], together[1::2]):
        assert plain["texts"] == streamed["texts"] == seed_texts(model, request)
        assert plain["finish"] == streamed["finish"]
    sampled = model.sample(1, prompt="def ", max_new_tokens=40, temperature=1.2, repetition_penalty=1.3,
                           generator=torch.Generator().manual_seed(5))[0]
    assert together[8]["texts"][0] == sampled[len("def "):]   # what `genlab sample --seed 5` writes


def test_a_request_joins_a_batch_under_way(server, registry, slow_steps):
    slow_steps[0] = 0.02
    loop_before = decode_loop(server.app)
    steps_before = len(loop_before.decoder.batch_sizes) if loop_before else 0
    # greedy: the tiny model's sampled texts often end early (eos), its greedy one runs the whole budget
    long = {"prompt": "def ", "max_tokens": 60, "temperature": 0}
    short = {"prompt": "def f", "max_tokens": 10, "seed": 12}

    async def run():
        async with httpx.AsyncClient(timeout=60) as client:
            started = asyncio.Event()
            first = asyncio.ensure_future(ask(client, server.url, long, stream=True, started=started))
            await started.wait()
            await asyncio.sleep(0.1)   # a few steps in
            second = await ask(client, server.url, short, stream=False)
            return await first, second

    first, second = asyncio.run(run())
    sizes = decode_loop(server.app).decoder.batch_sizes[steps_before:]
    assert first["finish"] == ["length"]
    assert sizes[0] == 1 and 2 in sizes and sizes[-1] == 1   # alone, then two, then alone again
    model = registry.get("code").model
    assert first["texts"] == seed_texts(model, long) and second["texts"] == seed_texts(model, short)


def wait_until_free(loop, seconds: float) -> float:
    start = time.monotonic()
    while loop.live and time.monotonic() - start < seconds:
        time.sleep(0.01)
    assert loop.live == 0, "the slot was not freed"
    return time.monotonic() - start


def test_a_client_that_disconnects_frees_its_place_at_once(server, slow_steps):
    slow_steps[0] = 0.05   # 64 tokens would take 3.2 s
    request = {"model": "code", "prompt": "def ", "max_tokens": 64, "temperature": 0, "stream": True}   # no early eos
    added = []
    add = BatchDecoder.add

    def remember(self, *args, **kwargs):
        added.append(add(self, *args, **kwargs))
        return added[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BatchDecoder, "add", remember)
        with httpx.stream("POST", f"{server.url}/v1/completions", json=request, timeout=30) as response:
            next(line for line in response.iter_lines() if line)   # the first piece: it is decoding
        wait_until_free(decode_loop(server.app), 2.0)   # the whole stream would take 3.2 s
        assert added[-1].finish == "cancelled" and added[-1].drawn < 64
        with pytest.raises(httpx.ReadTimeout):   # not streamed: the client gives up waiting
            httpx.post(f"{server.url}/v1/completions", json={**request, "stream": False}, timeout=0.4)
        wait_until_free(decode_loop(server.app), 2.0)
        assert added[-1].finish == "cancelled" and added[-1].drawn < 64
    assert httpx.post(f"{server.url}/v1/completions", json={**request, "max_tokens": 4, "stream": False},
                      timeout=30).status_code == 200


def test_bad_requests_in_the_middle_get_json_errors_and_disturb_no_one(server, registry, slow_steps):
    slow_steps[0] = 0.01
    good = REQUESTS[1:5]
    bad = [({"model": "code", "prompt": "x", "max_tokens": 10_000}, 400),
           ({"model": "nope", "prompt": "x"}, 404),
           ({"model": "code", "prompt": "x", "temperature": "hot"}, 422),
           ({"model": "code", "prompt": [], "stream": True}, 400),
           ({"model": "code", "prompt": "x", "n": 300}, 400),
           ({"model": "code", "prompt": "x", "top_p": 0}, 422),
           ({"model": "code", "prompt": "def €", "stream": True}, 400)]   # not in the vocabulary

    async def run():
        async with httpx.AsyncClient(timeout=60) as client:
            pending = [asyncio.ensure_future(ask(client, server.url, r, stream=True)) for r in good]
            await asyncio.sleep(0.05)
            errors = [await client.post(f"{server.url}/v1/completions", json=body) for body, _ in bad]
            errors.append(await client.post(f"{server.url}/v1/completions", content=b"{not json",
                                            headers={"content-type": "application/json"}))
            return errors, await asyncio.gather(*pending)

    errors, streams = asyncio.run(run())
    for response, status in zip(errors, [s for _, s in bad] + [422]):
        assert response.status_code == status and response.json()["error"]["code"] == status
    model = registry.get("code").model
    assert [s["texts"] for s in streams] == [seed_texts(model, r) for r in good]


def test_64_streams_at_once_lose_nothing(server, registry):
    requests = [{"prompt": "def ", "max_tokens": 12, "seed": 100 + i, "temperature": 0.8} for i in range(64)]

    async def run():
        async with httpx.AsyncClient(timeout=60) as client:
            return await asyncio.gather(*(ask(client, server.url, r, stream=True) for r in requests))

    streams = asyncio.run(run())
    model = registry.get("code").model
    assert [s["texts"] for s in streams] == [seed_texts(model, r) for r in requests]


def test_a_burst_past_max_concurrent_gets_answers_or_429s(registry, slow_steps):
    slow_steps[0] = 0.01
    live = ThreadServer(registry, ServeSettings(max_tokens=64, max_concurrent=8)).start()
    try:
        requests = [{"prompt": "def ", "max_tokens": 16, "seed": 200 + i} for i in range(24)]

        async def run():
            async with httpx.AsyncClient(timeout=60) as client:
                return await asyncio.gather(*(ask(client, live.url, r, stream=i % 2 == 0)
                                              for i, r in enumerate(requests)))

        results = asyncio.run(run())
    finally:
        live.stop()
    model = registry.get("code").model
    served = [(r, result) for r, result in zip(requests, results) if result["status"] == 200]
    refused = [result for result in results if result["status"] != 200]
    assert len(served) >= 8 and refused and len(served) + len(refused) == 24
    assert all(result["status"] == 429 and result["error"]["type"] == "rate_limit_error" for result in refused)
    assert all(result["texts"] == seed_texts(model, r) for r, result in served)


def test_over_the_time_limit_is_504_and_frees_the_places(registry, slow_steps):
    slow_steps[0] = 0.05
    app = create_app(registry, ServeSettings(max_tokens=64, timeout_s=0.3))
    client = TestClient(app)
    request = {"model": "code", "prompt": "def ", "max_tokens": 64, "seed": 1, "n": 2}
    response = client.post("/v1/completions", json=request)
    assert response.status_code == 504 and response.json()["error"]["type"] == "timeout_error"
    wait_until_free(decode_loop(app), 1.0)
    with client.stream("POST", "/v1/completions", json={**request, "stream": True}) as streamed:
        events = [line for line in streamed.iter_lines() if line]
    assert events[-1] == "data: [DONE]" and json.loads(events[-2][6:])["error"]["code"] == 504
    wait_until_free(decode_loop(app), 1.0)


def test_a_model_with_its_own_processors_completes_one_at_a_time(registry):
    entry = registry.get("code")
    app = create_app(registry)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(entry.model.processors_, "mark", object())   # e.g. a text watermark's logits processor
        loop = asyncio.run(app.app.state.continuous.loop_for(entry))
    assert loop is None


def test_genlab_serve_flags_turn_continuous_batching_off(registry, monkeypatch, capsys):
    given = {}
    monkeypatch.setattr(serve_command, "_serve", lambda listener, runs, runs_dir, timeout, settings:
                        given.update(settings))
    run = str(registry.get("code").run)
    for flags, expected in (([], (True, 64)), (["--no-continuous-batching", "--max-num-seqs", "8"], (False, 8))):
        with pytest.raises(SystemExit) as done:
            main(["serve", run, "--port", "0", *flags])
        assert done.value.code == 0 and (given["continuous_batching"], given["max_num_seqs"]) == expected
    with pytest.raises(SystemExit) as done:
        main(["serve", run, "--max-num-seqs", "0"])
    assert done.value.code == 1 and "--max-num-seqs" in capsys.readouterr().err

