set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl 2>&1 | tail -2
export PYTHONPATH=$PWD/src:/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
O=$OUT; export OUT=$O/dense_x2
GPUS=2 LIMIT=$L bash benchmarks/dense_scenes.sh 16 data.root=.data/fashion-mnist 2>&1 | tail -16
cd $O && tar czf dense.tgz dense_x2 && rm -rf dense_x2
