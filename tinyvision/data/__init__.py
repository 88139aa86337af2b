"""Data: CIFAR-10 (official or JPEG copy), class folders, the DataLoader, batch transforms and
sampling for class imbalance."""
from .cifar import CIFAR10, CIFAR10_MEAN, CIFAR10_STD, CLASSES, download_cifar10, load_cifar10, resolve_cifar10
from .download import DownloadError, download_url, md5sum
from .folder import ImageFolder, read_image_folder
from .loader import DataLoader
from .sampler import (RandomSampler, SequentialSampler, Subset, WeightedRandomSampler, class_weights,
                      make_imbalanced, per_class_subset, stratified_split)
from .transforms import (ColorJitter, Compose, Cutout, Normalize, RandomCrop, RandomHorizontalFlip,
                         RandomRotation, ToTensor)
