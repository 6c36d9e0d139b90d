"""Train a model from composed configs: ``python train.py model=cnn trainer.max_epochs=3``."""

from omegaconf import DictConfig

import lightning_args


@lightning_args.main(config_path="conf", config_name="config")
def main(cfg: DictConfig) -> lightning_args.Objective:
    return lightning_args.train(cfg)


if __name__ == "__main__":
    main()
