/* The spellings of the runtime file's enum values (NULL-terminated, index =
 * enum value), shared by the reader (config.c) and the writer
 * (config_write.c) so that the two cannot drift apart. */
#ifndef SLA2_MODEL_CONFIG_NAMES_H
#define SLA2_MODEL_CONFIG_NAMES_H

extern const char *const sla2_config_backend_names[];     /* sla2_backend */
extern const char *const sla2_config_sampler_names[];     /* sla2_sampler */
extern const char *const sla2_config_attention_names[];   /* sla2_attention_kind */
extern const char *const sla2_config_feature_map_names[]; /* sla2_feature_map */
extern const char *const sla2_config_quant_names[];       /* sla2_quant_mode */
extern const char *const sla2_config_weights_names[];     /* sla2_weight_storage_kind */

#endif
