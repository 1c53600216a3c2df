set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl 2>&1 | tail -2
export PYTHONPATH=$PWD/src:/tmp/site PYTHONUNBUFFERED=1 SPIKEFORMERS_CACHE=$PWD/runs/.cache
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
O=$OUT; export OUT=$O/dense_x4
LIMIT=$L bash benchmarks/dense_scenes.sh 20 data.root=.data/fashion-mnist 2>&1 | tail -16
cd $O && tar czf dense.tgz dense_x4 && rm -rf dense_x4
# run three times back to back on one warm nvidia-h100-x4 request (it came as 4 H200s):
#   L=9.2 bash command.sh; L=9.3 bash command.sh; L=8.2 bash command.sh
# carry: .data/fashion-mnist (raw Fashion-MNIST idx.gz), .whl (pycocotools wheel for the machine's Python)
# fashion_mnist_scenes with occlusion "opaque", the dataset default from this run on (the recipes unchanged)
