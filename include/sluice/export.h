/*
 * sluice/export.h - a version's adapters in the forms inference servers
 * load (docs/export.md): the whole stack as one PEFT adapter (vLLM applies
 * one adapter per request), and each adapter as a llama.cpp LoRA GGUF file
 * with the stack scales llama.cpp's server needs.
 */
#ifndef SLUICE_EXPORT_H
#define SLUICE_EXPORT_H

#include "sluice/repo.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Write ref's whole adapter stack into dir (created if needed) as one PEFT
 * LoRA adapter, adapter_config.json + adapter_model.safetensors, equal to
 * the stack: rank R = the sum of the adapters' ranks, the scales folded
 * into lora_B, lora_alpha = R. The same stack gives the same bytes.
 * *report: {"version","directory","r","modules","adapters":[{"name",
 * "scale","rows":[first, end)}]}. SLUICE_EINVALID when ref has no adapters.
 */
int sluice_export_adapter(sluice_repo *repo, const char *ref, const char *dir, char **report);

/*
 * Write each adapter of ref's stack as dir/NAME.gguf (a llama.cpp LoRA
 * adapter for ref's llama base) and dir/scales.json, what a llama.cpp
 * server started with those files needs to serve the stack: {"version",
 * "adapters":[{"id","name","file","scale"}]} where id is the adapter's
 * index in the order to load them (llama.cpp's /lora-adapters id) and scale
 * its stack scale (llama.cpp's --lora-scaled). *report is the same object
 * with "directory". SLUICE_EINVALID when ref has no adapters or its base is
 * not a llama model.
 */
int sluice_export_gguf(sluice_repo *repo, const char *ref, const char *dir, char **report);

#ifdef __cplusplus
}
#endif
#endif
