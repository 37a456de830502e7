/*
 * eval/export.h - a version's adapters in the forms inference servers load:
 * the whole stack as one PEFT LoRA adapter (what vLLM applies, one adapter
 * per request), and one PEFT adapter as a llama.cpp LoRA GGUF file.
 */
#ifndef SLUICE_EVAL_EXPORT_H
#define SLUICE_EVAL_EXPORT_H

#include "repo.h"
#include "version.h"

/*
 * Write into dir (created if needed) one PEFT LoRA adapter,
 * adapter_config.json + adapter_model.safetensors, whose forward pass is
 * v's whole adapter stack. The stack computes, per adapted module,
 *   y = x.W^T + sum_i s_i.(x.A_i^T).B_i^T
 * with s_i the stack scale times the adapter's own alpha/r (alpha/sqrt(r)
 * with rslora; rank_pattern and alpha_pattern per module). The export
 * writes A = [A_1; A_2; ...] and B = [s_1.B_1 | s_2.B_2 | ...] with r =
 * lora_alpha = R and use_rslora false, so PEFT's scale is exactly 1.
 * Adapter i owns rows [o_i, o_i + w_i) of every module, w_i its largest
 * module rank; R = sum w_i is the same for every module (plain PEFT and
 * vLLM want one rank), and the rows of an adapter that lacks a module, or
 * adapts it with a smaller rank, are zero. Modules are the union of the
 * stack's, named in full in target_modules (embeddings as
 * lora_embedding_A/B). Tensors are F32, sorted by name, with fixed
 * metadata: the same stack gives the same bytes. base_model_name_or_path
 * is the first adapter's. The result is checked with sluice_peft__load
 * against the base before returning. Files are replaced atomically.
 *
 * Returns 0; SLUICE_EINVALID when v has no adapters or no base, or an
 * adapter or the base fails its checks (message names it); SLUICE_EIO,
 * SLUICE_ENOMEM, or what the checkout returns.
 */
int sluice_export__stack(sluice_repo *repo, const sluice_version *v, const char *dir);

/*
 * Write one PEFT LoRA adapter (adapter_dir) for the llama base model in
 * base_dir as a llama.cpp LoRA adapter GGUF file at out_path (replaced
 * atomically): GGUF v3, general.architecture "llama", general.type
 * "adapter", general.name (adapter_dir's last component),
 * general.alignment 32, adapter.type "lora", adapter.lora.alpha (the
 * config's lora_alpha); tensors <llama.cpp base tensor>.lora_a/.lora_b, F32,
 * sorted by name, in the shapes and row order llama.cpp expects (export.c
 * gives the facts and their sources). Module scales that llama.cpp's
 * alpha/r would get wrong (rslora, rank_pattern, alpha_pattern) are folded
 * into lora_b, so llama.cpp at adapter scale s applies s times PEFT's
 * forward pass exactly. The adapter is checked against the base with
 * sluice_peft__load first.
 *
 * Returns 0; SLUICE_EINVALID (the base is not a llama model the built-in
 * evaluator opens, the adapter fails its check, a module llama.cpp has no
 * tensor for); SLUICE_ENOTFOUND, SLUICE_EIO, SLUICE_ENOMEM.
 */
int sluice_export__gguf(sluice_ctx *ctx, const char *adapter_dir, const char *base_dir,
                        const char *out_path);

#endif
