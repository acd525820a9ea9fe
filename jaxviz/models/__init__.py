"""The model contract, the zoo (flax NNX) and adapters from NNX, Linen and plain functions."""

from jaxviz.models.adapters import from_function, from_functions, from_linen, from_nnx
from jaxviz.models.contract import Model, Taps
from jaxviz.models.imagenet import caffe_deprocess, caffe_preprocess, imagenet_class_names
from jaxviz.models.registry import MODELS, PRETRAINED, TRAINABLE, get_model
from jaxviz.models.squeezenet import squeezenet
from jaxviz.models.vgg import VGG, load_hed_vgg16, load_keras_h5, load_torchvision_safetensors, vgg, vgg16, vgg19
from jaxviz.models.weights import load_array_pickle, random_weights
from jaxviz.models.zoo import ConvNet, LeNet, TextCNN, convnet, lenet, textcnn

__all__ = [
    "MODELS", "PRETRAINED", "TRAINABLE", "ConvNet", "LeNet", "Model", "Taps", "caffe_deprocess",
    "caffe_preprocess", "convnet", "from_function", "from_functions", "from_linen", "from_nnx",
    "get_model", "imagenet_class_names", "lenet", "load_array_pickle", "squeezenet", "VGG", "load_hed_vgg16",
    "load_keras_h5", "load_torchvision_safetensors", "random_weights", "vgg", "vgg16", "vgg19", "TextCNN", "textcnn",
]
