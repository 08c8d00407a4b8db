"""LLaVA-OneVision (`model_type` "llava_onevision"): SigLIP tower, anyres_max_9 tiling with `image_newline`, a
Qwen2 language model. Single images and multi-image samples; videos are not supported here (their processor needs
torchvision): a sample with a video is an error."""

from __future__ import annotations

from .llava_next import LlavaNextFamily


class LlavaOnevisionFamily(LlavaNextFamily):
    name = "llava_onevision"
    model_types = ("llava_onevision",)
    model_class = "LlavaOnevisionForConditionalGeneration"
    image_inputs_keys = ("pixel_values", "image_sizes", "batch_num_images")

    def process_images(self, processor, images):
        # the images of one sample form one entry: a multi-image sample is counted (and packed) as OneVision does
        out = processor.image_processor([images], return_tensors="pt")
        inputs = {k: out[k] for k in self.image_inputs_keys if k in out}
        counts = [processor.replace_image_token(out, i).count(self.image_token) for i in range(len(images))]
        return inputs, counts

    tiny_special_tokens = ("<|im_start|>", "<|im_end|>", "<video>")

    def tiny(self, tokenizer, cfg):
        from transformers import LlavaOnevisionConfig, LlavaOnevisionImageProcessorPil, Qwen2Config, SiglipVisionConfig

        from .processors import LlavaOnevisionProcessor
        from .tiny_parts import vision_kwargs, chatml_template, pinpoints, text_config

        side = cfg.image_size
        config = LlavaOnevisionConfig(
            vision_config=SiglipVisionConfig(**vision_kwargs(cfg)),
            text_config=Qwen2Config(**text_config(tokenizer, cfg)), image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
            video_token_id=tokenizer.convert_tokens_to_ids("<video>"), image_grid_pinpoints=pinpoints(side),
            vision_feature_layer=-1, vision_feature_select_strategy="full")
        image_processor = LlavaOnevisionImageProcessorPil(size={"height": side, "width": side},
                                                         image_grid_pinpoints=pinpoints(side))
        processor = LlavaOnevisionProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                            num_image_tokens=(side // cfg.patch_size) ** 2,
                                            vision_feature_select_strategy="full",
                                            chat_template=chatml_template("<image>\n"))
        return config, processor

    def load_processor(self, path: str):
        from ...data.images import load_image_processor
        from .processors import LlavaOnevisionProcessor

        processor = LlavaOnevisionProcessor.from_pretrained(path)
        processor.image_processor = load_image_processor(path)
        return processor
