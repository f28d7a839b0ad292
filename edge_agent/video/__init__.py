"""Video in: cameras, RTSP streams and files through OpenCV, or a folder of images."""
