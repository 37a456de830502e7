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

#endif
