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

    def load_processor(self, path: str):
        from .processors import LlavaOnevisionProcessor

        return LlavaOnevisionProcessor.from_pretrained(path)
